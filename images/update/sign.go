package update

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultKeysDir is where a box keeps the public keys it trusts for
// update bundles: one PEM file per key, named KEYID.pub.
const DefaultKeysDir = "/etc/ftnas/update-keys"

// KeyIDSize is a key id's size.
const KeyIDSize = 8

// KeyID names a signing key: the first 8 bytes of the SHA-256 of its
// Ed25519 public key, written as 16 hex digits.
type KeyID [KeyIDSize]byte

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// KeyIDOf returns pub's key id.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	h := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], h[:KeyIDSize])
	return id
}

// Signature is one signature of a bundle's manifest.
type Signature struct {
	KeyID KeyID
	// Sig is the Ed25519 signature of the manifest bytes as stored.
	Sig []byte
}

// ErrUntrusted marks a bundle this box does not trust: unsigned, signed
// by no key it trusts, or with a bad signature. It is an ErrFormat: bad
// input, not a fault of the box.
var ErrUntrusted = fmt.Errorf("%w: not signed by a trusted key", ErrFormat)

func untrusted(format string, args ...any) error {
	return fmt.Errorf("update: bundle: %w: %s", ErrUntrusted, fmt.Sprintf(format, args...))
}

// Keyring is the set of public keys a box trusts.
type Keyring map[KeyID]ed25519.PublicKey

// IDs lists the keyring's key ids, sorted.
func (k Keyring) IDs() []string {
	var ids []string
	for id := range k {
		ids = append(ids, id.String())
	}
	slices.Sort(ids)
	return ids
}

// Verify returns the id of the first key of k with a valid signature on
// h's manifest. Otherwise it fails with an ErrUntrusted that names the
// problem: "unsigned bundle (format N)", "bad signature by key ID" (a
// trusted key's signature does not verify: the manifest was changed, or
// the signature), or "signed by unknown key ID".
func (k Keyring) Verify(h BundleHeader) (KeyID, error) {
	if len(h.Signatures) == 0 {
		return KeyID{}, untrusted("unsigned bundle (format %d)", h.Format)
	}
	var bad, unknown []string
	for _, s := range h.Signatures {
		pub, ok := k[s.KeyID]
		if !ok {
			unknown = append(unknown, s.KeyID.String())
			continue
		}
		if len(s.Sig) == ed25519.SignatureSize && ed25519.Verify(pub, h.RawManifest, s.Sig) {
			return s.KeyID, nil
		}
		bad = append(bad, s.KeyID.String())
	}
	if len(bad) > 0 {
		return KeyID{}, untrusted("bad signature by key %s (the bundle was changed after it was signed)", strings.Join(bad, ", "))
	}
	return KeyID{}, untrusted("signed by unknown key %s (this box trusts %s)", strings.Join(unknown, ", "), orNone(k.IDs()))
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "no key"
	}
	return strings.Join(ids, ", ")
}

// Trust is the signature check of an update, before anything is written.
type Trust struct {
	// Signed is set when a trusted key signed the bundle; By is its id.
	Signed bool
	By     KeyID
}

// Check decides whether the bundle h may be written: a box that trusts
// keys (len(k) > 0) wants a valid signature by one of them, whatever
// allowUnsigned says; a box that trusts none (a development machine)
// refuses every bundle unless allowUnsigned, and then checks no
// signature.
func (k Keyring) Check(h BundleHeader, dir string, allowUnsigned bool) (Trust, error) {
	if len(k) == 0 {
		if !allowUnsigned {
			return Trust{}, untrusted("this box trusts no update key (none in %s): refusing the bundle; allow an unchecked bundle explicitly (nasctl update --allow-unsigned) to write it anyway", dir)
		}
		return Trust{}, nil
	}
	id, err := k.Verify(h)
	if err != nil {
		return Trust{}, err
	}
	return Trust{Signed: true, By: id}, nil
}

// LoadKeys reads the trusted public keys in dir: every *.pub file, a PEM
// "PUBLIC KEY" (PKIX, as `openssl pkey -pubout` writes) holding an
// Ed25519 key. A dir that does not exist is an error wrapping
// fs.ErrNotExist; a file that is no such key is an error naming it.
func LoadKeys(dir string) (Keyring, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("update: trusted keys: %w", err)
	}
	k := Keyring{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".pub") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("update: trusted keys: %w", err)
		}
		pub, err := ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("update: trusted key %s: %w", p, err)
		}
		k[KeyIDOf(pub)] = pub
	}
	return k, nil
}

// LoadKeysOrNone is LoadKeys, with a dir that does not exist an empty
// keyring.
func LoadKeysOrNone(dir string) (Keyring, error) {
	k, err := LoadKeys(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Keyring{}, nil
	}
	return k, err
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" block holding an Ed25519
// key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New(`not a PEM "PUBLIC KEY"`)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 public key", k)
	}
	return pub, nil
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY".
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an ed25519.PublicKey always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePrivateKey decodes a PEM "PRIVATE KEY" block (PKCS #8, as
// `openssl genpkey -algorithm ed25519` writes) holding an Ed25519 key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New(`not a PEM "PRIVATE KEY" (PKCS #8; openssl genpkey -algorithm ed25519)`)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 private key", k)
	}
	return priv, nil
}

// MarshalPrivateKey encodes priv as a PEM "PRIVATE KEY" (PKCS #8).
func MarshalPrivateKey(priv ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		panic(err) // an ed25519.PrivateKey always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// LoadSigningKey reads a private key file (ParsePrivateKey).
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update: signing key: %w", err)
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("update: signing key %s: %w", path, err)
	}
	return k, nil
}

// DevKeyPath is the development signing key's file in a build cache.
func DevKeyPath(cacheDir string) string {
	return filepath.Join(cacheDir, "update-keys", "development-signing-key.pem")
}

// DevSigningKey returns the development signing key of the build cache
// cacheDir, generating it (mode 0600) the first time; created says it
// was made now. It is for development builds only: anyone with the
// cache can sign updates that boxes built with it accept.
func DevSigningKey(cacheDir string) (key ed25519.PrivateKey, path string, created bool, err error) {
	path = DevKeyPath(cacheDir)
	if key, err = LoadSigningKey(path); err == nil {
		return key, path, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, path, false, fmt.Errorf("update: development key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, path, false, fmt.Errorf("update: development key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dev-key-*")
	if err != nil {
		return nil, path, false, fmt.Errorf("update: development key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(MarshalPrivateKey(priv))
	if serr := tmp.Sync(); err == nil {
		err = serr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A link, not a rename: a build that made one meanwhile wins,
		// and both then use its key.
		err = os.Link(tmp.Name(), path)
	}
	if errors.Is(err, fs.ErrExist) {
		key, err = LoadSigningKey(path)
		return key, path, false, err
	}
	if err != nil {
		return nil, path, false, fmt.Errorf("update: development key: %w", err)
	}
	return priv, path, true, nil
}
