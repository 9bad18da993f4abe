package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/connectflow/connectflow/codec"
)

// codecKeyFileName is the payload key the dev stack made for its data folder, kept beside the database: payloads
// written on one run are read on the next.
const codecKeyFileName = "codec-keys"

// devKeyID names the generated key in every payload it seals.
const devKeyID = "dev1"

// devCodecKeys returns the dev stack's own payload key and its CONNECTFLOW_CODEC_KEYS text: read from the data
// folder's codec-keys file when there is one, else made and written there (0600). With -memory nothing is written
// and the key lives as long as the process.
func devCodecKeys(c config) ([]codec.Key, string, error) {
	path := ""
	if !c.memory {
		path = filepath.Join(c.dataDir, codecKeyFileName)
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			text, err := codec.KeysFileText(data)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", path, err)
			}
			keys, err := codec.ParseKeys(text)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", path, err)
			}
			return keys, text, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, "", fmt.Errorf("payload key: %w", err)
		}
	}
	secret := make([]byte, codec.KeySize)
	if _, err := rand.Read(secret); err != nil {
		return nil, "", fmt.Errorf("payload key: %w", err)
	}
	text := devKeyID + ":" + base64.StdEncoding.EncodeToString(secret)
	if path != "" {
		content := "# connectflow dev: the payload key of this data folder; delete it only with the database\n" + text + "\n"
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return nil, "", fmt.Errorf("payload key: %w", err)
		}
	}
	return []codec.Key{{ID: devKeyID, Secret: secret}}, text, nil
}
