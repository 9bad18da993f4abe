package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testDSN = "postgres://temporal:s3cret-pw@127.0.0.1:5432/postgres?sslmode=disable"

func TestParseConfigPostgres(t *testing.T) {
	c, err := parseConfig([]string{"-server-only", "-postgres", testDSN, "-history-shards", "4", "-temporal-port", "0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	pg := c.cluster.options()
	if pg == nil || pg.DSN != testDSN || pg.HistoryShards != 4 || pg.ClusterAddress != "127.0.0.1:7233" {
		t.Fatalf("postgres options %+v", pg)
	}
	if c.databaseFile() != "" || c.dataDir != "" {
		t.Fatalf("a cluster node names a SQLite file %q or data folder %q", c.databaseFile(), c.dataDir)
	}
	desc := dataDescription(c)
	if !strings.Contains(desc, "127.0.0.1:5432") || !strings.Contains(desc, "4 history shards") || strings.Contains(desc, "s3cret") {
		t.Fatalf("description %q: want the address and shards, never the password", desc)
	}
	if c.devDynamicConfigFor() != nil {
		t.Fatal("a cluster node adds dev-only dynamic config: it must run compose's settings only")
	}
	sqlite, err := parseConfig(nil, &bytes.Buffer{})
	if err != nil || sqlite.cluster.options() != nil || sqlite.devDynamicConfigFor() == nil {
		t.Fatalf("the SQLite default: options %v, dynamic config %v, err %v", sqlite.cluster.options(), sqlite.devDynamicConfigFor(), err)
	}
}

func TestParseConfigPostgresErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-history-shards", "4"}, "-history-shards: applies only with -postgres"},
		{[]string{"-cluster-address", "x:1"}, "-cluster-address: applies only with -postgres"},
		{[]string{"-postgres", testDSN, "-data", "d"}, "-data: cannot be used with -postgres"},
		{[]string{"-postgres", testDSN, "-memory"}, "-memory: cannot be used with -postgres"},
		{[]string{"-postgres", testDSN, "-history-shards", "0"}, "-history-shards: 0 is outside 1..16384"},
		{[]string{"-postgres", "mysql://u:s3cret-pw@h:1/db"}, "-postgres: postgres DSN: scheme"},
		{[]string{"-postgres", "postgres://u:s3cret-pw@h:1/db?sslmode=require"}, "only sslmode=disable"},
		{[]string{"-postgres", "postgres://h:1/db"}, "no user"},
	} {
		_, err := parseConfig(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error %q shows the password", tc.args, err)
		}
	}
}

// TestParseConfigPostgresFile: -postgres-file holds the DSN (its password stays out of ps), as every secret has a
// file variant; it is not taken with -postgres, and its errors never show the content.
func TestParseConfigPostgresFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dsn")
	if err := os.WriteFile(file, []byte(testDSN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig([]string{"-server-only", "-postgres-file", file, "-temporal-port", "0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if pg := c.cluster.options(); pg == nil || pg.DSN != testDSN || c.dataDir != "" {
		t.Fatalf("from the file: options %+v, data %q", pg, c.dataDir)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-postgres", testDSN, "-postgres-file", file}, "-postgres-file: give -postgres or -postgres-file, not both"},
		{[]string{"-postgres-file", filepath.Join(dir, "absent")}, "-postgres-file: cannot read the file"},
		{[]string{"-postgres-file", empty}, "-postgres-file: the file is empty"},
	} {
		_, err := parseConfig(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: err %v, want %q without the password", tc.args, err, tc.want)
		}
	}
}
