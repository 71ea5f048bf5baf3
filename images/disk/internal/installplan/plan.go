package installplan

import (
	"encoding/json"
	"fmt"
	"strings"

	"ftnas/raid"
)

// Path is where the plan sits in the installer's initramfs.
const Path = "/etc/ftnas/install.json"

// SummaryPrefix starts the installer's summary line; JSON follows.
const SummaryPrefix = "installer: summary "

// Plan is the installer's input.
type Plan struct {
	Layout raid.Layout `json:"layout"`
	// Images are copied onto arrays after they are created.
	Images []Image `json:"images"`
	// Homehost is stored in the arrays' superblocks: the installation
	// id (boot.ParamInstall); "any" for no host.
	Homehost string `json:"homehost"`
}

// Image is a file the host attached as a disk, to be copied onto the
// array with Role.
type Image struct {
	Role   string `json:"role"`
	Device string `json:"device"` // /dev/vdc
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Summary is the installer's report.
type Summary struct {
	Arrays []Array `json:"arrays"`
}

// Array is one created array.
type Array struct {
	Role    string `json:"role"`
	Name    string `json:"name"`
	UUID    string `json:"uuid"`
	Level   string `json:"level"`
	Members int    `json:"members"`
	// Size is the array's size in bytes.
	Size int64 `json:"size"`
	// Image is the SHA-256 of the image read back from the array ("" when
	// none was copied).
	Image string `json:"image,omitempty"`
}

// Check rejects a plan the installer cannot carry out.
func (p Plan) Check() error {
	if len(p.Layout.Disks) == 0 || len(p.Layout.Arrays) == 0 {
		return fmt.Errorf("installplan: no disks or no arrays")
	}
	for _, im := range p.Images {
		if _, ok := p.Layout.Array(im.Role); !ok {
			return fmt.Errorf("installplan: image for %q: no such array", im.Role)
		}
		if !strings.HasPrefix(im.Device, "/dev/") || im.Size <= 0 || len(im.SHA256) != 64 {
			return fmt.Errorf("installplan: image for %s: bad device %q, size %d or sha256 %q", im.Role, im.Device, im.Size, im.SHA256)
		}
	}
	return nil
}

// ParseSummary parses the JSON after SummaryPrefix.
func ParseSummary(s string) (Summary, error) {
	var sum Summary
	if err := json.Unmarshal([]byte(s), &sum); err != nil {
		return Summary{}, fmt.Errorf("installplan: parse summary: %w", err)
	}
	return sum, nil
}
