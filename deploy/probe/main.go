// Command probe is the healthcheck of connectflow's container images, which have no shell, curl or wget:
//
//	probe http://127.0.0.1:8080/readyz
//
// It GETs the URL and exits 0 on a 2xx answer, 1 on any other answer or no answer, 2 for bad usage. `probe
// -version` prints the build.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/connectflow/connectflow/internal/buildinfo"
)

// timeout bounds the whole check, below the compose healthcheck's own timeout.
const timeout = 3 * time.Second

// maxBody is how much of an answer is read into a failure message.
const maxBody = 512

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the one usage line below says it all
	version := buildinfo.Flag(fs, stdout)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "probe: %v\nusage: probe URL\n", err)
		return 2
	}
	if version() != nil {
		return 0
	}
	args = fs.Args()
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: probe URL")
		return 2
	}
	u, err := url.Parse(args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "probe: %q is not an absolute http(s) URL\n", args[0])
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := check(ctx, u.String()); err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return 1
	}
	return 0
}

// check GETs target and reports why its answer is not a 2xx.
func check(ctx context.Context, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return errors.Join(fmt.Errorf("%s answered %s", target, resp.Status), err)
	}
	return fmt.Errorf("%s answered %s: %s", target, resp.Status, body)
}
