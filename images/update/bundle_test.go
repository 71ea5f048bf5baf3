package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestBundleRoundTrip(t *testing.T) {
	rootfs := bytes.Repeat([]byte("squashfs"), 100_000)
	kernel, initrd := []byte("kernel image"), []byte("initrd image")
	for _, withBoot := range []bool{false, true} {
		src := Sources{Version: "2026.12.1", Rootfs: writeTemp(t, "rootfs", rootfs)}
		if withBoot {
			src.Kernel, src.Initrd = writeTemp(t, "k", kernel), writeTemp(t, "i", initrd)
		}
		path := filepath.Join(t.TempDir(), "bundle")
		m, err := Create(path, src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// A bundle read from a block device has padding after it.
		r := bytes.NewReader(append(b, make([]byte, 4096)...))
		got, n, err := ReadHeader(r)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != m.Version || len(got.Parts) != len(m.Parts) || got.HasBootFiles() != withBoot {
			t.Fatalf("manifest %+v, created %+v", got, m)
		}
		if n <= HeaderPrefix || n >= int64(len(b)) {
			t.Fatalf("header length %d", n)
		}
		var out bytes.Buffer
		if err := ReadPart(r, got.Parts[0], &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), rootfs) || got.Parts[0].SHA256 != sum(rootfs) {
			t.Fatal("rootfs differs")
		}
		if withBoot {
			for i, want := range [][]byte{kernel, initrd} {
				out.Reset()
				if err := ReadPart(r, got.Parts[i+1], &out); err != nil || !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("part %s: %q, %v", got.Parts[i+1].Name, out.Bytes(), err)
				}
			}
		}
	}
}

func TestBundleDamaged(t *testing.T) {
	rootfs := bytes.Repeat([]byte{7}, 10_000)
	path := filepath.Join(t.TempDir(), "bundle")
	m, err := Create(path, Sources{Version: "v1", Rootfs: writeTemp(t, "rootfs", rootfs)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	flipped := append([]byte(nil), b...)
	flipped[len(flipped)-1] ^= 1
	short := b[:len(b)-1]
	for _, tt := range []struct {
		name string
		b    []byte
		want string
	}{
		{"flipped", flipped, "sha256"},
		{"short", short, "ends after 9999 of its 10000 bytes"},
	} {
		r := bytes.NewReader(tt.b)
		got, _, err := ReadHeader(r)
		if err != nil {
			t.Fatal(err)
		}
		err = ReadPart(r, got.Parts[0], &bytes.Buffer{})
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrFormat with %q", tt.name, err, tt.want)
		}
	}
	if _, err := Create(path, Sources{Version: "v1", Rootfs: writeTemp(t, "r", rootfs)}); err == nil {
		t.Error("Create over an existing file succeeded")
	}
	if _, err := Create(filepath.Join(t.TempDir(), "x"), Sources{Version: "v1", Rootfs: writeTemp(t, "r", rootfs), Kernel: writeTemp(t, "k", rootfs)}); err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("kernel without initrd: %v", err)
	}
	_ = m
}

func header(manifest string, version uint32) []byte {
	b := []byte(Magic)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(manifest)))
	return append(b, manifest...)
}

func TestReadHeaderErrors(t *testing.T) {
	h := strings.Repeat("a", 64)
	good := `{"version":"v1","parts":[{"name":"rootfs","size":10,"sha256":"` + h + `"}]}`
	if _, _, err := ReadHeader(bytes.NewReader(header(good, 1))); err != nil {
		t.Fatalf("good header: %v", err)
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than its 16-byte header"},
		{"magic", append([]byte("NOTFTNAS"), header(good, 1)[8:]...), `no "FTNASUPD" magic`},
		{"version", header(good, 3), "format version 3"},
		{"no signature count", header(good, 2), "ends before its signature count"},
		{"too many signatures", binary.BigEndian.AppendUint32(header(good, 2), 17), "17 signatures"},
		{"cut signature", append(binary.BigEndian.AppendUint32(header(good, 2), 1), make([]byte, 71)...), "ends inside its 1 signatures"},
		{"same key twice", append(binary.BigEndian.AppendUint32(header(good, 2), 2), make([]byte, 2*SignatureSize)...), "two signatures by key 0000000000000000"},
		{"no manifest", header("", 1), "manifest length 0"},
		{"huge manifest", append(header("", 1)[:12], 0, 2, 0, 0), "manifest length 131072"},
		{"cut manifest", header(good, 1)[:40], "ends inside its"},
		{"not json", header("{", 1), "manifest"},
		{"unknown field", header(`{"version":"v1","x":1,"parts":[]}`, 1), "unknown field"},
		{"trailing", header(good+"{}", 1), "after the JSON"},
		{"no parts", header(`{"version":"v1","parts":[]}`, 1), `first part must be "rootfs"`},
		{"no version", header(`{"version":"","parts":[{"name":"rootfs","size":10,"sha256":"`+h+`"}]}`, 1), "version"},
		{"ctl version", header(`{"version":"a\nb","parts":[{"name":"rootfs","size":10,"sha256":"`+h+`"}]}`, 1), "printable"},
		{"size", header(`{"version":"v","parts":[{"name":"rootfs","size":0,"sha256":"`+h+`"}]}`, 1), "size 0"},
		{"hash", header(`{"version":"v","parts":[{"name":"rootfs","size":1,"sha256":"AB"}]}`, 1), "64 lower-case hex"},
		{"hex", header(`{"version":"v","parts":[{"name":"rootfs","size":1,"sha256":"`+strings.Repeat("g", 64)+`"}]}`, 1), "64 lower-case hex"},
		{"unknown part", header(`{"version":"v","parts":[{"name":"rootfs","size":1,"sha256":"`+h+`"},{"name":"x","size":1,"sha256":"`+h+`"}]}`, 1), `unknown name "x"`},
		{"twice", header(`{"version":"v","parts":[{"name":"rootfs","size":1,"sha256":"`+h+`"},{"name":"rootfs","size":1,"sha256":"`+h+`"}]}`, 1), "twice"},
		{"kernel alone", header(`{"version":"v","parts":[{"name":"rootfs","size":1,"sha256":"`+h+`"},{"name":"vmlinuz","size":1,"sha256":"`+h+`"}]}`, 1), "together"},
		{"big kernel", header(`{"version":"v","parts":[{"name":"rootfs","size":1,"sha256":"`+h+`"},{"name":"vmlinuz","size":1000000000,"sha256":"`+h+`"}]}`, 1), "size 1000000000"},
	} {
		_, _, err := ReadHeader(bytes.NewReader(tt.b))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		} else if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v is not ErrFormat", tt.name, err)
		}
	}
}

// FuzzReadHeader: the bundle comes from a file the user names.
func FuzzReadHeader(f *testing.F) {
	h := strings.Repeat("0", 64)
	f.Add(header(`{"version":"v1","parts":[{"name":"rootfs","size":10,"sha256":"`+h+`"}]}`, 1))
	f.Add(header(`{"version":"v1","parts":[{"name":"rootfs","size":1,"sha256":"`+h+`"},{"name":"vmlinuz","size":1,"sha256":"`+h+`"},{"name":"initrd","size":1,"sha256":"`+h+`"}]}`, 1))
	f.Add(header(`{}`, 1))
	f.Add(header(`{"version":"v1","serial":42,"parts":[{"name":"rootfs","size":10,"sha256":"`+h+`"}]}`, 1))
	f.Add(header(`{"version":"v1","serial":-1,"parts":[{"name":"rootfs","size":10,"sha256":"`+h+`"}]}`, 2))
	f.Add([]byte("FTNASUPD"))
	// Format 2: unsigned, signed by a trusted key, by it and an unknown
	// one, a bad signature, a cut signature block.
	trusted := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	keys := Keyring{KeyIDOf(trusted.Public().(ed25519.PublicKey)): trusted.Public().(ed25519.PublicKey)}
	m := Manifest{Version: "v1", Parts: []Part{{Name: PartRootfs, Size: 10, SHA256: h}}}
	for _, ks := range [][]ed25519.PrivateKey{nil, {trusted}, {other, trusted}, {other}} {
		hdr, err := Header(m, ks...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(hdr)
		if len(ks) > 0 {
			bad := append([]byte(nil), hdr...)
			bad[len(bad)-1] ^= 1
			f.Add(bad)
			f.Add(hdr[:len(hdr)-10])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bh, err := ReadBundleHeader(bytes.NewReader(b))
		if err == nil {
			id, verr := keys.Verify(bh)
			if verr != nil && !errors.Is(verr, ErrUntrusted) {
				t.Fatalf("verify error %v is not ErrUntrusted", verr)
			}
			if verr == nil {
				ok := false
				for _, sg := range bh.Signatures {
					ok = ok || sg.KeyID == id && ed25519.Verify(trusted.Public().(ed25519.PublicKey), bh.RawManifest, sg.Sig)
				}
				if !ok {
					t.Fatalf("verified by %s without a valid signature by it", id)
				}
			}
			want := HeaderPrefix + int64(len(bh.RawManifest))
			if bh.Format != FormatUnsigned {
				want += 4 + int64(len(bh.Signatures))*SignatureSize
			}
			if bh.Len != want || bh.Len > int64(len(b)) {
				t.Fatalf("header length %d, format %d, %d signatures", bh.Len, bh.Format, len(bh.Signatures))
			}
		}
		m, n, err := ReadHeader(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		if n > int64(len(b)) || n < HeaderPrefix {
			t.Fatalf("header length %d of %d bytes", n, len(b))
		}
		if err := m.Check(); err != nil {
			t.Fatalf("accepted manifest fails Check: %v", err)
		}
		hdr, err := Header(m)
		if err != nil {
			t.Fatalf("Header of an accepted manifest: %v", err)
		}
		m2, _, err := ReadHeader(bytes.NewReader(hdr))
		if err != nil || m2.Version != m.Version || len(m2.Parts) != len(m.Parts) {
			t.Fatalf("re-encoded header: %+v, %v", m2, err)
		}
	})
}
