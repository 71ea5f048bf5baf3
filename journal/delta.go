package journal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// The delta scheme: fixed blocks, compared by checksum. The standby sends
// the checksums of its copy's blocks in the range it fetches; the master
// reads the same range, and sends only the blocks whose checksum differs (runs
// of them merged into one Block), plus whatever lies past the standby's copy.
// Writes on a NAS overwrite in place (no insertions shift data), so fixed
// blocks find everything an rsync rolling checksum would, at a fraction of
// the CPU. The master still reads the range; the saving is on the wire.
//
// DefaultBlockSize is the block size the standby asks for.
const DefaultBlockSize = 64 << 10

// SumBlock is the checksum of one block: the first 16 bytes of its SHA-256.
func SumBlock(b []byte) Sum {
	h := sha256.Sum256(b)
	var s Sum
	copy(s[:], h[:SumLen])
	return s
}

// Summer makes the block checksums of one key (FetchRequest.Key). Keyed, a
// block's checksum is its AES-128-GCM tag under the key with a zero nonce:
// GHASH, a polynomial hash in a point only the key gives, so two different
// blocks collide with probability below 2^-100 for anyone who does not know
// the key — and it runs on AES-NI and carry-less multiplication, several
// times faster than SHA-256. (The fixed nonce is harmless: the ciphertext
// is thrown away, only the tag compares.) A Summer is not safe for
// concurrent use.
type Summer struct {
	aead cipher.AEAD // nil: SHA-256
	buf  []byte
}

var zeroNonce [12]byte

// NewSummer returns the Summer of key (SHA-256 for the zero key).
func NewSummer(key SumKey) (*Summer, error) {
	if key == (SumKey{}) {
		return &Summer{}, nil
	}
	c, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("journal: checksum key: %w", err)
	}
	g, err := cipher.NewGCM(c)
	if err != nil {
		return nil, fmt.Errorf("journal: checksum key: %w", err)
	}
	return &Summer{aead: g}, nil
}

// Sum is the checksum of b.
func (s *Summer) Sum(b []byte) Sum {
	if s.aead == nil {
		return SumBlock(b)
	}
	s.buf = s.aead.Seal(s.buf[:0], zeroNonce[:], b, nil)
	var sum Sum
	copy(sum[:], s.buf[len(b):])
	return sum
}

// BlockSums returns the SHA-256 checksums of the blocks of r in [off,
// off+n) (see Summer.BlockSums).
func BlockSums(r io.ReaderAt, off, n uint64, bs uint32, buf []byte) ([]Sum, error) {
	return (&Summer{}).BlockSums(r, off, n, bs, buf)
}

// BlockSums returns the checksums of the blocks of r in [off, off+n),
// blocks of bs bytes, stopping at r's end (the last block may be short). It
// reads with buf if it is at least bs bytes.
func (s *Summer) BlockSums(r io.ReaderAt, off, n uint64, bs uint32, buf []byte) ([]Sum, error) {
	if bs == 0 {
		return nil, errors.New("journal: block sums: block size 0")
	}
	if len(buf) < int(bs) {
		buf = make([]byte, bs)
	}
	buf = buf[:bs]
	var sums []Sum
	for pos := off; pos < off+n; pos += uint64(bs) {
		want := min(uint64(bs), off+n-pos)
		k, err := r.ReadAt(buf[:want], int64(pos))
		if k > 0 {
			sums = append(sums, s.Sum(buf[:k]))
		}
		if err == io.EOF || (err == nil && uint64(k) < want) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("journal: block sums at %d: %w", pos, err)
		}
	}
	return sums, nil
}

// DeltaBlocks answers the data part of q from r, whose size is size: the
// blocks of [q.Off, min(q.Off+q.Len, size)) that differ from q.Sums (all of
// them without a block size), adjacent ones merged. Checksums are made with
// q.Key.
func DeltaBlocks(r io.ReaderAt, size uint64, q *FetchRequest) ([]Block, error) {
	return deltaBlocks(r, size, q, nil)
}

// deltaBlocks is DeltaBlocks reading into buf where it is large enough.
func deltaBlocks(r io.ReaderAt, size uint64, q *FetchRequest, buf []byte) ([]Block, error) {
	summer, err := NewSummer(q.Key)
	if err != nil {
		return nil, err
	}
	if q.Off >= size {
		return nil, nil
	}
	end := min(q.Off+q.Len, size)
	data := buf[:0]
	if uint64(cap(buf)) < end-q.Off {
		data = make([]byte, end-q.Off)
	}
	data = data[:end-q.Off]
	k, err := r.ReadAt(data, int64(q.Off))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("journal: read %d bytes at %d: %w", len(data), q.Off, err)
	}
	data = data[:k] // the file may have shrunk since its size was taken
	if q.BlockSize == 0 {
		if len(data) == 0 {
			return nil, nil
		}
		return []Block{{Off: q.Off, Data: data}}, nil
	}
	bs := int(q.BlockSize)
	var blocks []Block
	for i := 0; i*bs < len(data); i++ {
		b := data[i*bs : min((i+1)*bs, len(data))]
		if i < len(q.Sums) && summer.Sum(b) == q.Sums[i] {
			continue
		}
		off := q.Off + uint64(i*bs)
		if n := len(blocks); n > 0 && blocks[n-1].Off+uint64(len(blocks[n-1].Data)) == off {
			last := &blocks[n-1]
			last.Data = data[last.Off-q.Off : off-q.Off+uint64(len(b))]
			continue
		}
		blocks = append(blocks, Block{Off: off, Data: b})
	}
	return blocks, nil
}
