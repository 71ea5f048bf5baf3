package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
)

// Update route, served when the Backend is also an UpdateBackend:
//
//	POST /v1/update[?tries=N][&allow_unsigned=1][&allow_downgrade=1]  bundle bytes (application/octet-stream) -> 200 UpdateResult
//	GET  /v1/update            -> 200 FirmwareStatus

// UpdateResult is a firmware update written to the inactive root slot;
// the box runs it after a reboot.
type UpdateResult struct {
	// Version is the bundle's release name.
	Version string `json:"version"`
	// Serial is the bundle's build number, which orders releases;
	// RunningVersion and RunningSerial are the running release's.
	// Downgrade is set when the bundle is older and was written because
	// the request allowed it (AllowDowngrade).
	Serial         uint64 `json:"serial"`
	RunningVersion string `json:"running_version,omitempty"`
	RunningSerial  uint64 `json:"running_serial"`
	Downgrade      bool   `json:"downgrade,omitempty"`
	// SignedBy is the id of the trusted key whose signature on the
	// bundle was verified; empty when Unverified.
	SignedBy string `json:"signed_by,omitempty"`
	// Unverified is set when the box trusts no update key and the
	// bundle was written without a signature check (AllowUnsigned).
	Unverified bool `json:"unverified,omitempty"`
	// RunningSlot is the slot the box runs; Slot the one written.
	RunningSlot string `json:"running_slot"`
	Slot        string `json:"slot"`
	// Array is the md device written; Bytes and SHA256 the squashfs as
	// read back from it.
	Array  string `json:"array"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// BootFiles is set when the slot's kernel and initrd were replaced.
	BootFiles bool `json:"boot_files"`
	// Entry is the slot's loader entry, which boots next; Tries the
	// boots it gets before the loader falls back to RunningSlot.
	Entry string `json:"entry"`
	Tries int    `json:"tries"`
	// ESPs are the member disks' ESPs, ESPFrom (edited) first: all
	// identical.
	ESPFrom string        `json:"esp_from"`
	ESPs    []RaidESPDisk `json:"esps"`
	// RebootNeeded is always set: the new slot runs after a reboot.
	RebootNeeded bool `json:"reboot_needed"`
}

// UpdateRequest tunes an update.
type UpdateRequest struct {
	// Tries is how many boots the new slot gets; 0 means the server's
	// default (3).
	Tries int
	// AllowUnsigned writes a bundle unchecked on a box that trusts no
	// update key (a development machine); a box that trusts keys
	// refuses a bundle none of them signed regardless.
	AllowUnsigned bool
	// AllowDowngrade writes a bundle older than the running release (a
	// lower serial); without it such a bundle is ErrInvalid.
	AllowDowngrade bool
}

// FirmwareStatus is the firmware's state: which root slot runs, which
// boots next, and whether an update is on trial or was rolled back.
type FirmwareStatus struct {
	// FromSlot is false when nasd does not run from a root slot (a
	// development machine); Why says what is missing then, and nothing
	// else is set.
	FromSlot bool   `json:"from_slot"`
	Why      string `json:"why,omitempty"`
	Running  string `json:"running,omitempty"`
	// Booted is the loader entry the box booted.
	Booted string `json:"booted,omitempty"`
	Next   string `json:"next,omitempty"`
	// State is good, trial (the running slot is an update not yet
	// blessed), update-pending (another slot boots next on trial) or
	// rolled-back (the preferred slot failed its tries).
	State string         `json:"state,omitempty"`
	Slots []FirmwareSlot `json:"slots"`
	// ESP is the disk whose ESP was read.
	ESP string `json:"esp,omitempty"`
	// Version and Serial are the running slot's release (Version
	// "unknown", Serial 0: built before serials); ReleaseError says why
	// it could not be read. Updates with a lower serial are refused
	// unless allowed. Install is the installation id the box booted
	// with ("" before ids).
	Version      string `json:"version,omitempty"`
	Serial       uint64 `json:"serial,omitempty"`
	ReleaseError string `json:"release_error,omitempty"`
	Install      string `json:"install,omitempty"`
}

// FirmwareSlot is one root slot's loader entry.
type FirmwareSlot struct {
	Slot      string `json:"slot"`
	Entry     string `json:"entry"`
	Preferred bool   `json:"preferred"`
	Trial     bool   `json:"trial"`
	TriesLeft int    `json:"tries_left"`
	TriesDone int    `json:"tries_done"`
	Failed    bool   `json:"failed"`
	Running   bool   `json:"running"`
	Next      bool   `json:"next"`
}

// UpdateBackend writes firmware updates; a Backend that also implements
// it serves POST and GET /v1/update.
type UpdateBackend interface {
	// Update reads an update bundle from r, writes it to the root slot
	// the box is not running and makes that slot boot next. A bundle
	// that is not well formed, damaged, or not signed by a key the box
	// trusts (unless req.AllowUnsigned on a box that trusts none) is
	// ErrInvalid, refused before anything is written.
	Update(ctx context.Context, r io.Reader, req UpdateRequest) (UpdateResult, error)
	// Firmware reads the root slots' state.
	Firmware(ctx context.Context) (FirmwareStatus, error)
}

// NormFirmwareStatus gives the wire form fixed shapes.
func NormFirmwareStatus(s FirmwareStatus) FirmwareStatus {
	if s.Slots == nil {
		s.Slots = []FirmwareSlot{}
	}
	return s
}

// NormUpdateResult gives the wire form fixed shapes.
func NormUpdateResult(r UpdateResult) UpdateResult {
	if r.ESPs == nil {
		r.ESPs = []RaidESPDisk{}
	}
	return r
}

func updateRoutes(h *handler, b UpdateBackend) map[string]map[string]http.HandlerFunc {
	return map[string]map[string]http.HandlerFunc{
		"/v1/update": {"GET": func(w http.ResponseWriter, r *http.Request) {
			st, err := b.Firmware(r.Context())
			if err != nil {
				h.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, NormFirmwareStatus(st))
		}, "POST": func(w http.ResponseWriter, r *http.Request) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/octet-stream" {
				writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("update: Content-Type must be application/octet-stream (the bundle), not %q", r.Header.Get("Content-Type")))
				return
			}
			var req UpdateRequest
			if v := r.URL.Query().Get("tries"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 9 {
					h.fail(w, r, badRequest("tries=%q: want 1-9", v))
					return
				}
				req.Tries = n
			}
			if v := r.URL.Query().Get("allow_unsigned"); v != "" {
				allow, err := strconv.ParseBool(v)
				if err != nil {
					h.fail(w, r, badRequest("allow_unsigned=%q: want 1 or 0", v))
					return
				}
				req.AllowUnsigned = allow
			}
			if v := r.URL.Query().Get("allow_downgrade"); v != "" {
				allow, err := strconv.ParseBool(v)
				if err != nil {
					h.fail(w, r, badRequest("allow_downgrade=%q: want 1 or 0", v))
					return
				}
				req.AllowDowngrade = allow
			}
			res, err := b.Update(r.Context(), r.Body, req)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			res.RebootNeeded = true
			if res.Downgrade {
				h.log.Warn("firmware DOWNGRADE written (allow_downgrade)", "version", res.Version, "serial", res.Serial, "running_version", res.RunningVersion, "running_serial", res.RunningSerial)
			}
			if res.Unverified {
				h.log.Warn("firmware update written WITHOUT a signature check (allow_unsigned on a box that trusts no update key)", "version", res.Version, "slot", res.Slot, "entry", res.Entry, "sha256", res.SHA256)
			} else {
				h.log.Info("firmware update written", "version", res.Version, "signed_by", res.SignedBy, "slot", res.Slot, "entry", res.Entry, "sha256", res.SHA256)
			}
			writeJSON(w, http.StatusOK, NormUpdateResult(res))
		}},
	}
}

var _ UpdateBackend = (*Client)(nil)

// Update streams the bundle r to nasd, which writes it to the inactive
// root slot.
func (c *Client) Update(ctx context.Context, r io.Reader, req UpdateRequest) (UpdateResult, error) {
	q := url.Values{}
	if req.Tries != 0 {
		q.Set("tries", strconv.Itoa(req.Tries))
	}
	if req.AllowUnsigned {
		q.Set("allow_unsigned", "1")
	}
	if req.AllowDowngrade {
		q.Set("allow_downgrade", "1")
	}
	path := "/v1/update"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var res UpdateResult
	err := c.doBody(ctx, http.MethodPost, path, "application/octet-stream", r, &res)
	return res, err
}

// Firmware reads the root slots' state.
func (c *Client) Firmware(ctx context.Context) (FirmwareStatus, error) {
	var st FirmwareStatus
	err := c.do(ctx, http.MethodGet, "/v1/update", nil, &st)
	return st, err
}
