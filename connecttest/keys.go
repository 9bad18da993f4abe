package connecttest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectflow/connectflow/connect"
)

// MinKeyBits is the smallest RSA modulus the sandbox signs with; Connect's keys are 2048-bit.
const MinKeyBits = 2048

// keySet is the sandbox's JWKS: every published key, the last one being the current signing key.
type keySet struct {
	mu   sync.RWMutex
	keys []signingKey
}

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

// jwk is one RSA public key as RFC 7517 publishes it.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// newSigningKey validates key (or generates one when nil) and names it by its RFC 7638 thumbprint.
func newSigningKey(key *rsa.PrivateKey) (signingKey, error) {
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, MinKeyBits); err != nil {
			return signingKey{}, fmt.Errorf("generate RSA key: %w", err)
		}
	}
	if bits := key.N.BitLen(); bits < MinKeyBits {
		return signingKey{}, fmt.Errorf("RSA key has %d bits, want at least %d", bits, MinKeyBits)
	}
	if err := key.Validate(); err != nil {
		return signingKey{}, fmt.Errorf("invalid RSA key: %w", err)
	}
	pub := publicJWK("", &key.PublicKey)
	// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
	thumb := sha256.Sum256(fmt.Appendf(nil, `{"e":%q,"kty":"RSA","n":%q}`, pub.E, pub.N))
	return signingKey{kid: base64.RawURLEncoding.EncodeToString(thumb[:]), key: key}, nil
}

func publicJWK(kid string, pub *rsa.PublicKey) jwk {
	return jwk{
		Kty: "RSA",
		Kid: kid,
		Alg: jwt.SigningMethodRS256.Alg(),
		Use: "sig",
		N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func (ks *keySet) add(k signingKey) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, have := range ks.keys {
		if have.kid == k.kid {
			return fmt.Errorf("connecttest: key %s is already published", k.kid)
		}
	}
	ks.keys = append(ks.keys, k)
	return nil
}

func (ks *keySet) retire(kid string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for i, k := range ks.keys {
		if k.kid != kid {
			continue
		}
		if i == len(ks.keys)-1 {
			return errors.New("connecttest: cannot retire the current signing key; rotate first")
		}
		ks.keys = append(ks.keys[:i:i], ks.keys[i+1:]...)
		return nil
	}
	return fmt.Errorf("connecttest: no published key with kid %q", kid)
}

func (ks *keySet) current() signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[len(ks.keys)-1]
}

func (ks *keySet) public() []connect.PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]connect.PublicKey, len(ks.keys))
	for i, k := range ks.keys {
		out[i] = connect.PublicKey{KID: k.kid, Key: &k.key.PublicKey}
	}
	return out
}

func (ks *keySet) jwks() ([]byte, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	for _, k := range ks.public() {
		set.Keys = append(set.Keys, publicJWK(k.KID, k.Key))
	}
	return json.Marshal(set)
}

// signJWT signs claims with k and names k in the kid header.
func signJWT(k signingKey, claims jwt.MapClaims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = k.kid
	signed, err := tok.SignedString(k.key)
	if err != nil {
		return "", fmt.Errorf("connecttest: sign JWT: %w", err)
	}
	return signed, nil
}

// RotateKey publishes key (a fresh 2048-bit key when nil) and makes it the current signing key for session JWTs
// and webhooks. Older keys stay in the JWKS until RetireKey. It returns the new key's kid.
func (s *Server) RotateKey(key *rsa.PrivateKey) (string, error) {
	k, err := newSigningKey(key)
	if err != nil {
		return "", fmt.Errorf("connecttest: rotate key: %w", err)
	}
	if err := s.keys.add(k); err != nil {
		return "", err
	}
	s.log.Info("signing key rotated", "kid", k.kid)
	return k.kid, nil
}

// RetireKey removes a non-current key from the JWKS.
func (s *Server) RetireKey(kid string) error {
	if err := s.keys.retire(kid); err != nil {
		return err
	}
	s.log.Info("signing key retired", "kid", kid)
	return nil
}

// CurrentKeyID is the kid of the key that signs now.
func (s *Server) CurrentKeyID() string { return s.keys.current().kid }

// PublicKeys are the keys the JWKS publishes, oldest first.
func (s *Server) PublicKeys() []connect.PublicKey { return s.keys.public() }
