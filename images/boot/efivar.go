package boot

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// LoaderGUID is the vendor GUID of the variables systemd-boot sets for
// the booted system (the Boot Loader Interface).
const LoaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// Boot Loader Interface variables read by the userland.
const (
	// VarLoaderInfo is the loader's name and version.
	VarLoaderInfo = "LoaderInfo"
	// VarLoaderEntrySelected is the entry booted (ftnas-1-a.conf).
	VarLoaderEntrySelected = "LoaderEntrySelected"
	// VarLoaderDevicePartUUID is the GPT partition GUID of the ESP the
	// loader was read from.
	VarLoaderDevicePartUUID = "LoaderDevicePartUUID"
)

// EFIVarsDir is where efivarfs is mounted.
const EFIVarsDir = "/sys/firmware/efi/efivars"

// EFIVarFile is the efivarfs file name of a loader variable.
func EFIVarFile(name string) string { return name + "-" + LoaderGUID }

// DecodeEFIString decodes an efivarfs file holding a string variable: 4
// bytes of attributes, then UTF-16LE text, optionally NUL-terminated.
func DecodeEFIString(b []byte) (string, error) {
	if len(b) < 4 || (len(b)-4)%2 != 0 {
		return "", fmt.Errorf("boot: EFI string variable of %d bytes: want 4 bytes of attributes and UTF-16 text", len(b))
	}
	u := make([]uint16, 0, (len(b)-4)/2)
	for i := 4; i < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// LoaderVars are what systemd-boot told the booted system.
type LoaderVars struct {
	Info  string // "systemd-boot 252.39-1~deb12u2"
	Entry string // "ftnas-1-a.conf"
	// ESP is the GPT partition GUID of the ESP it was read from.
	ESP string
}
