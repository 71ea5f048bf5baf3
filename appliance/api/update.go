package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// Update route, served when the Backend is also an UpdateBackend:
//
//	POST /v1/update[?tries=N]  bundle bytes (application/octet-stream) -> 200 UpdateResult

// UpdateResult is a firmware update written to the inactive root slot;
// the box runs it after a reboot.
type UpdateResult struct {
	// Version is the bundle's release name.
	Version string `json:"version"`
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
}

// UpdateBackend writes firmware updates; a Backend that also implements
// it serves POST /v1/update.
type UpdateBackend interface {
	// Update reads an update bundle from r, writes it to the root slot
	// the box is not running and makes that slot boot next. A bundle
	// that is not well formed or damaged is ErrInvalid.
	Update(ctx context.Context, r io.Reader, req UpdateRequest) (UpdateResult, error)
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
		"/v1/update": {"POST": func(w http.ResponseWriter, r *http.Request) {
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
			res, err := b.Update(r.Context(), r.Body, req)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			res.RebootNeeded = true
			h.log.Info("firmware update written", "version", res.Version, "slot", res.Slot, "entry", res.Entry, "sha256", res.SHA256)
			writeJSON(w, http.StatusOK, NormUpdateResult(res))
		}},
	}
}

var _ UpdateBackend = (*Client)(nil)

// Update streams the bundle r to nasd, which writes it to the inactive
// root slot.
func (c *Client) Update(ctx context.Context, r io.Reader, req UpdateRequest) (UpdateResult, error) {
	path := "/v1/update"
	if req.Tries != 0 {
		path += "?tries=" + strconv.Itoa(req.Tries)
	}
	var res UpdateResult
	err := c.doBody(ctx, http.MethodPost, path, "application/octet-stream", r, &res)
	return res, err
}
