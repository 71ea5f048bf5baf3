package update

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(seed byte) (ed25519.PrivateKey, ed25519.PublicKey, KeyID) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	pub := k.Public().(ed25519.PublicKey)
	return k, pub, KeyIDOf(pub)
}

// signedBundle makes a bundle of rootfs signed by keys and returns its
// bytes.
func signedBundle(t *testing.T, rootfs []byte, keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bundle")
	if _, err := Create(path, Sources{Version: "2026.12.1", Rootfs: writeTemp(t, "rootfs", rootfs), Keys: keys}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readBH(t *testing.T, b []byte) (BundleHeader, *bytes.Reader) {
	t.Helper()
	r := bytes.NewReader(b)
	h, err := ReadBundleHeader(r)
	if err != nil {
		t.Fatal(err)
	}
	return h, r
}

func wantUntrusted(t *testing.T, name string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v, want an error with %q", name, err, want)
	} else if !errors.Is(err, ErrUntrusted) || !errors.Is(err, ErrFormat) {
		t.Errorf("%s: %v is not ErrUntrusted and ErrFormat", name, err)
	}
}

func TestKeyID(t *testing.T) {
	_, pub, id := testKey(1)
	if got := id.String(); len(got) != 16 || got != sum(pub)[:16] {
		t.Errorf("key id %s, sha256 of the key %s", got, sum(pub))
	}
}

func TestSignVerify(t *testing.T) {
	vendor, vendorPub, vendorID := testKey(1)
	next, nextPub, nextID := testKey(2)
	stranger, _, strangerID := testKey(3)
	keys := Keyring{vendorID: vendorPub}
	rootfs := bytes.Repeat([]byte("squashfs"), 1000)

	// Good: verified, and the parts follow the signatures.
	good := signedBundle(t, rootfs, vendor)
	h, r := readBH(t, good)
	if h.Format != FormatVersion || len(h.Signatures) != 1 || h.Signatures[0].KeyID != vendorID || h.Len != HeaderPrefix+int64(len(h.RawManifest))+4+SignatureSize {
		t.Fatalf("header %+v", h)
	}
	if id, err := keys.Verify(h); err != nil || id != vendorID {
		t.Fatalf("verify: %s, %v", id, err)
	}
	if tr, err := keys.Check(h, "/keys", false); err != nil || !tr.Signed || tr.By != vendorID {
		t.Errorf("check: %+v, %v", tr, err)
	}
	var out bytes.Buffer
	if err := ReadPart(r, h.Manifest.Parts[0], &out); err != nil || !bytes.Equal(out.Bytes(), rootfs) {
		t.Fatalf("rootfs after the signatures: %v", err)
	}

	// The manifest changed after signing (same length: a size, a hash
	// or the version rewritten): bad signature.
	i := bytes.Index(good, []byte(`"2026.12.1"`))
	tampered := append([]byte(nil), good...)
	tampered[i+1] = '3'
	h, _ = readBH(t, tampered)
	_, err := keys.Verify(h)
	wantUntrusted(t, "tampered manifest", err, "bad signature by key "+vendorID.String())

	// A flipped signature byte: bad signature too.
	flipped := append([]byte(nil), good...)
	flipped[h.Len-1] ^= 1
	h, _ = readBH(t, flipped)
	_, err = keys.Verify(h)
	wantUntrusted(t, "flipped signature", err, "bad signature by key "+vendorID.String())

	// A changed part: the signature holds, the part's SHA-256 does not.
	part := append([]byte(nil), good...)
	part[len(part)-1] ^= 1
	h, r = readBH(t, part)
	if _, err := keys.Verify(h); err != nil {
		t.Fatalf("a changed part fails the manifest's signature: %v", err)
	}
	if err := ReadPart(r, h.Manifest.Parts[0], &bytes.Buffer{}); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("changed part: %v", err)
	}

	// Signed by a key the box does not trust.
	h, _ = readBH(t, signedBundle(t, rootfs, stranger))
	_, err = keys.Verify(h)
	wantUntrusted(t, "wrong key", err, "signed by unknown key "+strangerID.String()+" (this box trusts "+vendorID.String()+")")

	// Unsigned, format 2 and format 1.
	unsigned := signedBundle(t, rootfs)
	h, _ = readBH(t, unsigned)
	_, err = keys.Check(h, "/keys", true)
	wantUntrusted(t, "unsigned, allow on a box with keys", err, "unsigned bundle (format 2)")
	v1 := header(string(h.RawManifest), FormatUnsigned)
	h1, _ := readBH(t, append(v1, rootfs...))
	if h1.Format != FormatUnsigned || h1.Len != int64(len(v1)) || len(h1.Signatures) != 0 {
		t.Fatalf("format 1 header %+v", h1)
	}
	_, err = keys.Verify(h1)
	wantUntrusted(t, "format 1", err, "unsigned bundle (format 1)")

	// No trusted keys: refused unless allowed, then unchecked.
	for _, b := range [][]byte{unsigned, good, tampered} {
		h, _ = readBH(t, b)
		_, err = Keyring{}.Check(h, "/etc/ftnas/update-keys", false)
		wantUntrusted(t, "no keys", err, "trusts no update key (none in /etc/ftnas/update-keys)")
		if tr, err := (Keyring{}).Check(h, "/x", true); err != nil || tr.Signed {
			t.Errorf("no keys, allowed: %+v, %v", tr, err)
		}
	}

	// Rotation: signed by the next key and the vendor's. A box that
	// trusts either takes it; one that trusts only the next key too.
	both := signedBundle(t, rootfs, stranger, next, vendor)
	h, _ = readBH(t, both)
	if id, err := keys.Verify(h); err != nil || id != vendorID {
		t.Errorf("several signatures, one trusted: %s, %v", id, err)
	}
	if id, err := (Keyring{nextID: nextPub}).Verify(h); err != nil || id != nextID {
		t.Errorf("several signatures, the next key trusted: %s, %v", id, err)
	}
	// A bad signature by one trusted key does not hide a good one by
	// another.
	broken := append([]byte(nil), both...)
	broken[HeaderPrefix+len(h.RawManifest)+4+SignatureSize+KeyIDSize] ^= 1 // next's signature
	h, _ = readBH(t, broken)
	if id, err := (Keyring{nextID: nextPub, vendorID: vendorPub}).Verify(h); err != nil || id != vendorID {
		t.Errorf("one bad, one good signature: %s, %v", id, err)
	}
	_, err = Keyring{nextID: nextPub}.Verify(h)
	wantUntrusted(t, "the only trusted signature bad", err, "bad signature by key "+nextID.String())

	if _, err := Header(h.Manifest, vendor, vendor); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("same key twice: %v", err)
	}
}

func TestLoadKeys(t *testing.T) {
	_, pub1, id1 := testKey(1)
	_, pub2, id2 := testKey(2)
	dir := t.TempDir()
	for name, b := range map[string][]byte{id1.String() + ".pub": MarshalPublicKey(pub1), "rotated.pub": MarshalPublicKey(pub2), "README": []byte("not a key")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k, err := LoadKeys(dir)
	if err != nil || len(k) != 2 || !k[id1].Equal(pub1) || !k[id2].Equal(pub2) || strings.Join(k.IDs(), " ") != strings.Join(Keyring{id1: pub1, id2: pub2}.IDs(), " ") {
		t.Fatalf("keys %v, %v", k.IDs(), err)
	}
	if _, err := LoadKeys(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	if k, err := LoadKeysOrNone(filepath.Join(dir, "none")); err != nil || len(k) != 0 {
		t.Errorf("missing dir, or none: %v, %v", k, err)
	}
	priv, _, _ := testKey(3)
	for name, b := range map[string][]byte{"garbage.pub": []byte("garbage"), "private.pub": MarshalPrivateKey(priv)} {
		bad := t.TempDir()
		os.WriteFile(filepath.Join(bad, name), b, 0o644)
		if _, err := LoadKeys(bad); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "PUBLIC KEY") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSigningKeys(t *testing.T) {
	cache := t.TempDir()
	k1, path, created, err := DevSigningKey(cache)
	if err != nil || !created || path != DevKeyPath(cache) {
		t.Fatalf("first: %s %v %v", path, created, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v, %v", st.Mode(), err)
	}
	k2, _, created, err := DevSigningKey(cache)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second: created %v, same %v, %v", created, k1.Equal(k2), err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("key dir holds %d files", len(ents))
	}
	bad := writeTemp(t, "key.pem", MarshalPublicKey(k1.Public().(ed25519.PublicKey)))
	if _, err := LoadSigningKey(bad); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") || !strings.Contains(err.Error(), bad) {
		t.Errorf("public key as signing key: %v", err)
	}
	if p, err := ParsePublicKey(MarshalPublicKey(k1.Public().(ed25519.PublicKey))); err != nil || !p.Equal(k1.Public()) {
		t.Errorf("public key round trip: %v", err)
	}
}

// TestOpenSSLKeys: a vendor makes keys with openssl, and can sign the
// manifest with it too.
func TestOpenSSLKeys(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl:", err)
	}
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	for _, args := range [][]string{{"genpkey", "-algorithm", "ed25519", "-out", key}, {"pkey", "-in", key, "-pubout", "-out", pub}} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v: %s", args, err, out)
		}
	}
	k, err := LoadSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys(dir)
	if err != nil || len(keys) != 1 || !keys[KeyIDOf(k.Public().(ed25519.PublicKey))].Equal(k.Public()) {
		t.Fatalf("keys %v, %v", keys.IDs(), err)
	}
	h, _ := readBH(t, signedBundle(t, []byte("rootfs"), k))
	manifest := writeTemp(t, "manifest", h.RawManifest)
	sig, err := exec.Command("openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", manifest).Output()
	if err != nil {
		t.Skip("openssl pkeyutl -rawin:", err)
	}
	if !bytes.Equal(sig, h.Signatures[0].Sig) {
		t.Error("openssl's signature of the manifest differs from the bundle's")
	}
}
