package codec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// Where LoadKeys finds the keys: a list in the environment, or a file holding the same list.
const (
	EnvKeys     = "CONNECTFLOW_CODEC_KEYS"
	EnvKeysFile = "CONNECTFLOW_CODEC_KEYS_FILE"
)

// maxKeyIDLen keeps key IDs short: one is stored in every payload.
const maxKeyIDLen = 64

// ParseKeys reads "id1:base64key1,id2:base64key2"; the first key is the current one. Each secret is the standard
// base64 of KeySize random bytes (openssl rand -base64 32). Errors name the entry and its ID, never key material.
func ParseKeys(spec string) ([]Key, error) {
	var entries []entry
	for i, text := range strings.Split(spec, ",") {
		entries = append(entries, entry{where: fmt.Sprintf("entry %d", i+1), text: text})
	}
	keys, err := parseEntries(entries)
	if err != nil {
		return nil, fmt.Errorf("codec keys: %w", err)
	}
	return keys, nil
}

// LoadKeys reads the keys from EnvKeys, else from the file EnvKeysFile names (the same list, comma or line
// separated, '#' starting a comment). It returns (nil, nil) when neither is set, and an error when both are.
func LoadKeys(getenv func(string) string) ([]Key, error) {
	spec, path := getenv(EnvKeys), getenv(EnvKeysFile)
	switch {
	case spec != "" && path != "":
		return nil, fmt.Errorf("codec keys: set %s or %s, not both", EnvKeys, EnvKeysFile)
	case spec != "":
		keys, err := ParseKeys(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKeys, err)
		}
		return keys, nil
	case path != "":
		keys, err := readKeysFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", EnvKeysFile, path, err)
		}
		return keys, nil
	default:
		return nil, nil
	}
}

// KeysFileText turns a keys file (one id:base64key per line or comma separated, '#' starting a comment) into the
// comma-separated list EnvKeys takes; it is how a CONNECTFLOW_CODEC_KEYS_FILE becomes CONNECTFLOW_CODEC_KEYS.
func KeysFileText(data []byte) (string, error) {
	var list []string
	for n, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		for text := range strings.SplitSeq(line, ",") {
			text = strings.TrimSpace(text)
			if strings.IndexFunc(text, unicode.IsControl) >= 0 {
				return "", fmt.Errorf("codec keys file: line %d holds a control character", n+1)
			}
			if text != "" {
				list = append(list, text)
			}
		}
	}
	if len(list) == 0 {
		return "", errors.New("codec keys file holds no keys")
	}
	return strings.Join(list, ","), nil
}

func readKeysFile(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var entries []entry
	for n, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		for text := range strings.SplitSeq(line, ",") {
			entries = append(entries, entry{where: fmt.Sprintf("line %d", n+1), text: text})
		}
	}
	return parseEntries(entries)
}

// entry is one "id:base64secret" and where it was written, for errors.
type entry struct{ where, text string }

// parseEntries skips blank entries, decodes the rest and checks them as New would.
func parseEntries(entries []entry) ([]Key, error) {
	var keys []Key
	var where []string
	for _, e := range entries {
		text := strings.TrimSpace(e.text)
		if text == "" {
			continue
		}
		id, secret, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%s: want id:base64secret, found no ':'", e.where)
		}
		id = strings.TrimSpace(id)
		if err := checkKeyID(id); err != nil {
			return nil, fmt.Errorf("%s: %w", e.where, err)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
		if err != nil {
			return nil, fmt.Errorf("%s (key %q): secret is not standard base64: %w", e.where, id, err)
		}
		keys = append(keys, Key{ID: id, Secret: raw})
		where = append(where, e.where)
	}
	if err := checkKeys(keys, where); err != nil {
		return nil, err
	}
	return keys, nil
}

// checkKeys is the one validation behind ParseKeys, LoadKeys and New; where[i], when given, names key i. Only IDs
// that passed checkKeyID are quoted in its errors.
func checkKeys(keys []Key, where []string) error {
	if len(keys) == 0 {
		return errors.New("no keys")
	}
	name := func(i int) string {
		if where != nil {
			return where[i]
		}
		return fmt.Sprintf("key %d", i+1)
	}
	seen := make(map[string]int, len(keys))
	for i, k := range keys {
		if err := checkKeyID(k.ID); err != nil {
			return fmt.Errorf("%s: %w", name(i), err)
		}
		if len(k.Secret) != KeySize {
			return fmt.Errorf("%s (key %q): secret is %d bytes, want %d", name(i), k.ID, len(k.Secret), KeySize)
		}
		if j, dup := seen[k.ID]; dup {
			return fmt.Errorf("%s: key id %q already used by %s", name(i), k.ID, name(j))
		}
		seen[k.ID] = i
	}
	return nil
}

func checkKeyID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("key id is %d characters, more than %d", len(id), maxKeyIDLen)
	}
	for i, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			// Not echoed: a malformed id may be a secret pasted in the wrong place.
			return fmt.Errorf("key id has a character other than letters, digits, '.', '_' or '-' at byte %d", i)
		}
	}
	return nil
}
