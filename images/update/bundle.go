package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Bundle format, version 2. Integers are big-endian.
//
//	offset      size  field
//	0           8     magic "FTNASUPD"
//	8           4     format version (2)
//	12          4     manifest length N (1 .. MaxManifest)
//	16          N     manifest: JSON {"version": "...", "serial": S, "parts": [...]}
//	16+N        4     signature count K (0 .. MaxSignatures)
//	20+N        72*K  signatures, each an 8-byte key id (KeyID: the first
//	                  8 bytes of the SHA-256 of the Ed25519 public key)
//	                  and the 64-byte Ed25519 signature of the manifest
//	                  bytes exactly as stored (the N bytes at offset 16)
//	20+N+72*K         the parts' bytes, in manifest order, back to back
//
// Format version 1 is the same without the signature count and the
// signatures: the parts follow the manifest. ReadBundleHeader still
// reads it, as a bundle with no signature, which Keyring.Check refuses
// ("unsigned bundle (format 1)").
//
// Each part is {"name": ..., "size": bytes, "sha256": lower-case hex}.
// "rootfs" (the slot's squashfs) comes first and is required; "vmlinuz"
// and "initrd" (the slot's kernel and initramfs on the ESP) are optional,
// both or neither. The manifest carries every part's size and SHA-256,
// so a signature over it covers the payload: a changed part fails its
// hash (ReadPart), a changed manifest its signature. Anything after the
// last part is ignored, so a bundle can be read from a block device it
// was written to.
const (
	Magic         = "FTNASUPD"
	FormatVersion = 2
	// FormatUnsigned is the first format, without signatures.
	FormatUnsigned = 1
	// HeaderPrefix is the size of magic, version and manifest length.
	HeaderPrefix = 16
	// MaxManifest bounds the manifest's length.
	MaxManifest = 64 << 10
	// MaxSignatures bounds the signatures of a bundle.
	MaxSignatures = 16
	// SignatureSize is one signature's size in the header: key id and
	// Ed25519 signature.
	SignatureSize = KeyIDSize + 64
)

// Part names.
const (
	PartRootfs  = "rootfs"
	PartKernel  = "vmlinuz"
	PartInitrd  = "initrd"
	maxRootfs   = int64(64) << 30
	maxBootFile = int64(256) << 20
	maxVersion  = 128
)

// Part is one payload of a bundle.
type Part struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is what a bundle holds.
type Manifest struct {
	// Version is the release's name, shown to the user ("2026.12.1").
	Version string `json:"version"`
	// Serial is the release's build number, which orders releases
	// (CheckDowngrade): a later build has a higher one. 0 (left out of
	// the JSON) is a bundle built before serials, which boxes running
	// firmware from before serials still read: their manifest parser
	// refuses unknown fields.
	Serial uint64 `json:"serial,omitempty"`
	Parts  []Part `json:"parts"`
}

// Part returns the part named name.
func (m Manifest) Part(name string) (Part, bool) {
	for _, p := range m.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return Part{}, false
}

// HasBootFiles reports whether the bundle carries a kernel and initrd.
func (m Manifest) HasBootFiles() bool {
	_, ok := m.Part(PartKernel)
	return ok
}

// ErrFormat marks a bundle that is not well formed.
var ErrFormat = errors.New("not a valid update bundle")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("update: bundle: %w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// Check validates the manifest.
func (m Manifest) Check() error {
	if err := checkVersion(m.Version); err != nil {
		return formatErr("%v", err)
	}
	if m.Serial > MaxSerial {
		return formatErr("serial %d is above %d", m.Serial, uint64(MaxSerial))
	}
	if len(m.Parts) == 0 || m.Parts[0].Name != PartRootfs {
		return formatErr("the first part must be %q", PartRootfs)
	}
	seen := map[string]bool{}
	for i, p := range m.Parts {
		limit := maxBootFile
		switch p.Name {
		case PartRootfs:
			limit = maxRootfs
		case PartKernel, PartInitrd:
		default:
			return formatErr("part %d: unknown name %q (want %s, %s or %s)", i, p.Name, PartRootfs, PartKernel, PartInitrd)
		}
		if seen[p.Name] {
			return formatErr("part %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Size <= 0 || p.Size > limit {
			return formatErr("part %q: size %d is not in 1..%d", p.Name, p.Size, limit)
		}
		if len(p.SHA256) != 64 || strings.ToLower(p.SHA256) != p.SHA256 {
			return formatErr("part %q: sha256 %q is not 64 lower-case hex digits", p.Name, p.SHA256)
		}
		if _, err := hex.DecodeString(p.SHA256); err != nil {
			return formatErr("part %q: sha256 %q is not 64 lower-case hex digits", p.Name, p.SHA256)
		}
	}
	if seen[PartKernel] != seen[PartInitrd] {
		return formatErr("%s and %s come together or not at all", PartKernel, PartInitrd)
	}
	return nil
}

// BundleHeader is a decoded bundle header.
type BundleHeader struct {
	// Format is the format version (FormatUnsigned or FormatVersion).
	Format   uint32
	Manifest Manifest
	// RawManifest is the manifest as stored: what the signatures sign.
	RawManifest []byte
	Signatures  []Signature
	// Len is the header's length: where the first part starts.
	Len int64
}

// ReadHeader reads a bundle's header from r and returns its manifest and
// the header's length (where the first part starts). r is left at the
// first part. It checks no signature: see ReadBundleHeader and
// Keyring.Check.
func ReadHeader(r io.Reader) (Manifest, int64, error) {
	h, err := ReadBundleHeader(r)
	return h.Manifest, h.Len, err
}

// ReadBundleHeader reads a bundle's header from r, with its signatures
// (none in format 1), and leaves r at the first part. The signatures are
// decoded, not verified (Keyring.Check).
func ReadBundleHeader(r io.Reader) (BundleHeader, error) {
	var pre [HeaderPrefix]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return BundleHeader{}, formatErr("shorter than its %d-byte header", HeaderPrefix)
		}
		return BundleHeader{}, fmt.Errorf("update: bundle: read header: %w", err)
	}
	if string(pre[:8]) != Magic {
		return BundleHeader{}, formatErr("no %q magic at the start (got %q)", Magic, printable(pre[:8]))
	}
	v := binary.BigEndian.Uint32(pre[8:12])
	if v != FormatVersion && v != FormatUnsigned {
		return BundleHeader{}, formatErr("format version %d; this firmware reads versions %d and %d", v, FormatUnsigned, FormatVersion)
	}
	n := binary.BigEndian.Uint32(pre[12:16])
	if n == 0 || n > MaxManifest {
		return BundleHeader{}, formatErr("manifest length %d is not in 1..%d", n, MaxManifest)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return BundleHeader{}, formatErr("ends inside its %d-byte manifest", n)
		}
		return BundleHeader{}, fmt.Errorf("update: bundle: read manifest: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return BundleHeader{}, err
	}
	h := BundleHeader{Format: v, Manifest: m, RawManifest: b, Len: HeaderPrefix + int64(n)}
	if v == FormatUnsigned {
		return h, nil
	}
	if h.Signatures, err = readSignatures(r); err != nil {
		return BundleHeader{}, err
	}
	h.Len += 4 + int64(len(h.Signatures))*SignatureSize
	return h, nil
}

// readSignatures reads format 2's signature count and signatures.
func readSignatures(r io.Reader) ([]Signature, error) {
	var cnt [4]byte
	if _, err := io.ReadFull(r, cnt[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, formatErr("ends before its signature count")
		}
		return nil, fmt.Errorf("update: bundle: read signatures: %w", err)
	}
	k := binary.BigEndian.Uint32(cnt[:])
	if k > MaxSignatures {
		return nil, formatErr("%d signatures; at most %d", k, MaxSignatures)
	}
	b := make([]byte, int(k)*SignatureSize)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, formatErr("ends inside its %d signatures", k)
		}
		return nil, fmt.Errorf("update: bundle: read signatures: %w", err)
	}
	sigs := make([]Signature, k)
	seen := map[KeyID]bool{}
	for i := range sigs {
		s := b[i*SignatureSize : (i+1)*SignatureSize]
		copy(sigs[i].KeyID[:], s[:KeyIDSize])
		sigs[i].Sig = append([]byte(nil), s[KeyIDSize:]...)
		if seen[sigs[i].KeyID] {
			return nil, formatErr("two signatures by key %s", sigs[i].KeyID)
		}
		seen[sigs[i].KeyID] = true
	}
	return sigs, nil
}

// ParseManifest decodes and checks a manifest: strict JSON, no unknown
// fields, nothing after the object.
func ParseManifest(b []byte) (Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, formatErr("manifest: %v", err)
	}
	if dec.More() {
		return Manifest{}, formatErr("manifest: data after the JSON object")
	}
	if err := m.Check(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func printable(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= ' ' && c < 0x7f {
			s.WriteByte(c)
		} else {
			fmt.Fprintf(&s, `\x%02x`, c)
		}
	}
	return s.String()
}

// Header encodes m's header (checked first) in format 2, signed by each
// of keys (none: an unsigned bundle, which a box that trusts keys
// refuses).
func Header(m Manifest, keys ...ed25519.PrivateKey) ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	if len(keys) > MaxSignatures {
		return nil, fmt.Errorf("update: bundle: %d signing keys; at most %d", len(keys), MaxSignatures)
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("update: bundle: encode manifest: %w", err)
	}
	if len(js) > MaxManifest {
		return nil, formatErr("manifest of %d bytes is longer than %d", len(js), MaxManifest)
	}
	out := make([]byte, HeaderPrefix, HeaderPrefix+len(js)+4+len(keys)*SignatureSize)
	copy(out, Magic)
	binary.BigEndian.PutUint32(out[8:12], FormatVersion)
	binary.BigEndian.PutUint32(out[12:16], uint32(len(js)))
	out = append(out, js...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(keys)))
	seen := map[KeyID]bool{}
	for _, k := range keys {
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("update: bundle: a signing key of %d bytes, not an Ed25519 private key", len(k))
		}
		id := KeyIDOf(k.Public().(ed25519.PublicKey))
		if seen[id] {
			return nil, fmt.Errorf("update: bundle: key %s given twice", id)
		}
		seen[id] = true
		out = append(out, id[:]...)
		out = append(out, ed25519.Sign(k, js)...)
	}
	return out, nil
}

// Sources are the host files a bundle is made of; Kernel and Initrd are
// optional (both or neither).
type Sources struct {
	Version string
	// Serial is the release's build number (Manifest.Serial); 0 leaves
	// it out.
	Serial uint64
	Rootfs string
	Kernel string
	Initrd string
	// Keys sign the bundle (Header); none makes an unsigned bundle.
	Keys []ed25519.PrivateKey
}

// Create writes the bundle of src to the new file path (which must not
// exist) and returns its manifest. On error the file is removed.
func Create(path string, src Sources) (m Manifest, err error) {
	m.Version, m.Serial = src.Version, src.Serial
	files := []struct{ name, path string }{{PartRootfs, src.Rootfs}, {PartKernel, src.Kernel}, {PartInitrd, src.Initrd}}
	var paths []string
	for _, f := range files {
		if f.path == "" {
			if f.name == PartRootfs {
				return Manifest{}, fmt.Errorf("update: create bundle %s: no rootfs", path)
			}
			continue
		}
		sum, size, err := hashFile(f.path)
		if err != nil {
			return Manifest{}, fmt.Errorf("update: create bundle %s: %w", path, err)
		}
		m.Parts = append(m.Parts, Part{Name: f.name, Size: size, SHA256: sum})
		paths = append(paths, f.path)
	}
	hdr, err := Header(m, src.Keys...)
	if err != nil {
		return Manifest{}, err
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return Manifest{}, fmt.Errorf("update: create bundle: %w", err)
	}
	defer func() {
		err = errors.Join(err, out.Close())
		if err != nil {
			os.Remove(path)
			err = fmt.Errorf("update: create bundle %s: %w", path, err)
		}
	}()
	if _, err := out.Write(hdr); err != nil {
		return Manifest{}, err
	}
	for i, p := range paths {
		if err := copyExactly(out, p, m.Parts[i].Size); err != nil {
			return Manifest{}, err
		}
	}
	return m, out.Sync()
}

func copyExactly(w io.Writer, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("copy %s: %w", path, err)
	}
	if n != size {
		return fmt.Errorf("copy %s: %d of %d bytes (changed meanwhile?)", path, n, size)
	}
	return nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ReadPart reads part p (the next bytes of r) into w, hashing them, and
// fails when r ends early or the hash differs: the bytes written to w
// are then not p.
func ReadPart(r io.Reader, p Part, w io.Writer) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, p.Size))
	if err != nil {
		return fmt.Errorf("update: bundle: part %s: %w", p.Name, err)
	}
	if n != p.Size {
		return formatErr("part %s: ends after %d of its %d bytes", p.Name, n, p.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return formatErr("part %s: sha256 %s, the manifest says %s (the bundle is damaged)", p.Name, got, p.SHA256)
	}
	return nil
}
