package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Install route, served when the Backend is also an InstallBackend:
//
//	POST /v1/install?disks=vdb,vdc[&data_level=raid5][&allow_unsigned=1]  bundle bytes (application/octet-stream) -> 200 InstallResult

// InstallRequest says onto which blank disks to install a bundle.
type InstallRequest struct {
	// Disks are kernel names (vdb) or /dev paths of blank disks.
	Disks []string
	// DataLevel is the data array's level (raid1, raid5, raid6,
	// raid10); "" picks by the number of disks.
	DataLevel string
	// AllowUnsigned is as for an update: honoured only on a box that
	// trusts no update key.
	AllowUnsigned bool
}

// InstallArray is one md array the install made.
type InstallArray struct {
	Role    string   `json:"role"`
	Name    string   `json:"name"`
	UUID    string   `json:"uuid"`
	Level   string   `json:"level"`
	Members []string `json:"members"`
	Size    int64    `json:"size"`
}

// InstallResult is a firmware installed onto blank disks; they boot it
// once the box is started from them.
type InstallResult struct {
	// ID is the new installation's id: its arrays' homehost and
	// ftnas.install= on its loader entries.
	ID         string         `json:"id"`
	Version    string         `json:"version"`
	SignedBy   string         `json:"signed_by,omitempty"`
	Unverified bool           `json:"unverified,omitempty"`
	Disks      []string       `json:"disks"`
	Arrays     []InstallArray `json:"arrays"`
	// Bytes and SHA256 are the slot image as read back from both root
	// slots.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// BootFiles says where the kernel and initrd came from: "bundle" or
	// "running ESP".
	BootFiles string `json:"boot_files"`
	// ESPHash is the SHA-256 of every new disk's ESP.
	ESPHash string `json:"esp_sha256"`
	// Cmdline is slot A's kernel command line.
	Cmdline string `json:"cmdline"`
}

// InstallBackend installs the firmware onto blank disks; a Backend that
// also implements it serves POST /v1/install.
type InstallBackend interface {
	// Install reads an update bundle from r and installs it onto the
	// blank disks req names. A bundle that is not well formed or not
	// trusted (as for Update), and disks that are not blank, that the
	// box runs from or too few for the data level, are ErrInvalid,
	// refused before anything is written.
	Install(ctx context.Context, r io.Reader, req InstallRequest) (InstallResult, error)
}

// NormInstallResult gives the wire form fixed shapes.
func NormInstallResult(r InstallResult) InstallResult {
	if r.Disks == nil {
		r.Disks = []string{}
	}
	if r.Arrays == nil {
		r.Arrays = []InstallArray{}
	}
	for i := range r.Arrays {
		if r.Arrays[i].Members == nil {
			r.Arrays[i].Members = []string{}
		}
	}
	return r
}

// ParseInstallQuery reads POST /v1/install's query.
func ParseInstallQuery(q url.Values) (InstallRequest, error) {
	var req InstallRequest
	for _, d := range strings.Split(q.Get("disks"), ",") {
		if d = strings.TrimSpace(d); d != "" {
			req.Disks = append(req.Disks, d)
		}
	}
	if len(req.Disks) == 0 {
		return req, badRequest("disks=%q: name the blank disks to install onto (disks=vdb,vdc)", q.Get("disks"))
	}
	switch v := strings.ToLower(q.Get("data_level")); v {
	case "", "raid1", "raid5", "raid6", "raid10":
		req.DataLevel = v
	default:
		return req, badRequest("data_level=%q: want raid1, raid5, raid6 or raid10", q.Get("data_level"))
	}
	if v := q.Get("allow_unsigned"); v != "" {
		allow, err := strconv.ParseBool(v)
		if err != nil {
			return req, badRequest("allow_unsigned=%q: want 1 or 0", v)
		}
		req.AllowUnsigned = allow
	}
	return req, nil
}

func installRoutes(h *handler, b InstallBackend) map[string]map[string]http.HandlerFunc {
	return map[string]map[string]http.HandlerFunc{
		"/v1/install": {"POST": func(w http.ResponseWriter, r *http.Request) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/octet-stream" {
				writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("install: Content-Type must be application/octet-stream (the bundle), not %q", r.Header.Get("Content-Type")))
				return
			}
			req, err := ParseInstallQuery(r.URL.Query())
			if err != nil {
				h.fail(w, r, err)
				return
			}
			res, err := b.Install(r.Context(), r.Body, req)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			h.log.Info("firmware installed onto blank disks", "id", res.ID, "version", res.Version, "disks", res.Disks,
				"signed_by", res.SignedBy, "unverified", res.Unverified, "sha256", res.SHA256)
			writeJSON(w, http.StatusOK, NormInstallResult(res))
		}},
	}
}

var _ InstallBackend = (*Client)(nil)

// Install streams the bundle r to nasd, which installs it onto the blank
// disks req names.
func (c *Client) Install(ctx context.Context, r io.Reader, req InstallRequest) (InstallResult, error) {
	q := url.Values{}
	q.Set("disks", strings.Join(req.Disks, ","))
	if req.DataLevel != "" {
		q.Set("data_level", req.DataLevel)
	}
	if req.AllowUnsigned {
		q.Set("allow_unsigned", "1")
	}
	var res InstallResult
	err := c.doBody(ctx, http.MethodPost, "/v1/install?"+q.Encode(), "application/octet-stream", r, &res)
	return res, err
}
