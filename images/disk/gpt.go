package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"ftnas/raid"
)

const sectorSize = 512

// GPTTable is the go-diskfs table for one disk of a layout.
func GPTTable(d raid.DiskLayout) (*gpt.Table, error) {
	t := &gpt.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize, ProtectiveMBR: true}
	for _, p := range d.Partitions {
		if p.Start%sectorSize != 0 || p.Size%sectorSize != 0 || p.Size <= 0 {
			return nil, fmt.Errorf("disk: %s partition %d: start %d size %d not whole sectors", d.Disk, p.Number, p.Start, p.Size)
		}
		t.Partitions = append(t.Partitions, &gpt.Partition{
			Index: p.Number,
			Start: uint64(p.Start / sectorSize),
			End:   uint64((p.Start+p.Size)/sectorSize - 1),
			Size:  uint64(p.Size),
			Type:  gpt.Type(p.Type),
			Name:  p.Label,
		})
	}
	return t, nil
}

// WriteGPT writes the protective MBR and the primary and backup GPT of d
// onto f, a disk of size bytes. Partition and disk GUIDs are random.
func WriteGPT(f *os.File, size int64, d raid.DiskLayout) error {
	t, err := GPTTable(d)
	if err != nil {
		return err
	}
	if err := t.Write(f, size); err != nil {
		return fmt.Errorf("disk: write GPT on %s: %w", f.Name(), err)
	}
	return nil
}

// GPTPartition is a partition read back from a disk.
type GPTPartition struct {
	// Partition has Number, Label, Type, Start and Size; Role is empty.
	raid.Partition
	// GUID is the partition's unique GUID (upper case).
	GUID string
}

// ReadGPT reads the GPT of a disk image back.
func ReadGPT(f *os.File) ([]GPTPartition, error) {
	t, err := gpt.Read(f, sectorSize, sectorSize)
	if err != nil {
		return nil, fmt.Errorf("disk: read GPT of %s: %w", f.Name(), err)
	}
	var out []GPTPartition
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		out = append(out, GPTPartition{Partition: raid.Partition{
			Number: p.Index, Label: p.Name, Type: string(p.Type),
			Start: int64(p.Start) * sectorSize, Size: int64(p.End-p.Start+1) * sectorSize,
		}, GUID: strings.ToUpper(p.GUID)})
	}
	return out, nil
}

// copyInto copies the file src to dst at offset off, skipping blocks of
// zeros: dst must read as zeros there already (a new sparse image).
func copyInto(dst *os.File, off int64, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("disk: copy %s: %w", src, err)
	}
	defer in.Close()
	buf := make([]byte, 1<<20)
	pos := off
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if !allZero(buf[:n]) {
				if _, werr := dst.WriteAt(buf[:n], pos); werr != nil {
					return fmt.Errorf("disk: copy %s into %s: %w", src, dst.Name(), werr)
				}
			}
			pos += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("disk: copy %s: %w", src, err)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
