package api

import (
	"context"
	"net/http"
	"time"
)

// RAID routes, served when the Backend is also a RaidBackend:
//
//	GET  /v1/raid                  -> 200 RaidStatus
//	POST /v1/raid/{array}/scrub    -> 202 RaidArray (a check has started)
//	POST /v1/raid/{array}/replace  RaidReplaceRequest -> 202 RaidArray
//
// and when the Backend is also a RaidDiskBackend:
//
//	POST /v1/raid/adopt            RaidAdoptRequest -> 202 RaidAdoptResult
//	POST /v1/raid/esp-sync         RaidESPSyncRequest -> 200 RaidESPSyncResult

// RaidMember is one component device of an md array.
type RaidMember struct {
	// Name is the kernel device name (sdb2).
	Name string `json:"name"`
	// Slot is the member's role in the array; -1 for none (a spare, or a
	// faulty member).
	Slot int `json:"slot"`
	// State are md's flags: in_sync, faulty, spare, want_replacement, ...
	State []string `json:"state"`
	// Errors counts read errors md corrected on this member.
	Errors int64 `json:"errors"`
}

// RaidArray is one md array.
type RaidArray struct {
	Name string `json:"name"`
	// Level is raid1, raid5, ...; "" while the array is inactive.
	Level string `json:"level"`
	// State is md's array_state: clean, active, inactive, ...
	State string `json:"state"`
	// RaidDisks is the number of member slots.
	RaidDisks int `json:"raid_disks"`
	// Degraded counts the slots without a working member.
	Degraded int `json:"degraded"`
	// SyncAction is idle, check, repair, resync, recover, reshape or
	// frozen ("" for levels without redundancy).
	SyncAction string `json:"sync_action"`
	// SyncProgress is the running sync's progress in percent; 0 when idle.
	SyncProgress float64 `json:"sync_progress"`
	// SyncDelayed is set while the sync waits for another array on the
	// same disks.
	SyncDelayed bool `json:"sync_delayed"`
	// SyncSpeedKiB is the sync rate in KiB/s; 0 when idle.
	SyncSpeedKiB int64 `json:"sync_speed_kib"`
	// ETASeconds is the time the running sync still needs at its current
	// speed; -1 when it cannot be computed (idle, delayed, no speed yet).
	ETASeconds int64 `json:"eta_seconds"`
	// MismatchCount is the number of sectors the last check or repair
	// found to differ between copies.
	MismatchCount int64 `json:"mismatch_count"`
	// LastCheck is when the last check (scheduled or by hand) started,
	// or when the schedule first saw the array; zero if unknown.
	LastCheck time.Time `json:"last_check,omitzero"`
	// NextCheck is when the schedule checks the array next; zero when
	// the schedule is off or LastCheck unknown.
	NextCheck time.Time    `json:"next_check,omitzero"`
	Members   []RaidMember `json:"members"`
}

// MembersUp counts the members in sync (serving data).
func (a RaidArray) MembersUp() int {
	n := 0
	for _, m := range a.Members {
		for _, f := range m.State {
			if f == "in_sync" {
				n++
				break
			}
		}
	}
	return n
}

// RaidStatus lists the md arrays, sorted by name.
type RaidStatus struct {
	Arrays []RaidArray `json:"arrays"`
}

// RaidReplaceRequest replaces member Old of an array with the unused
// device New (kernel names like sdb2; a /dev/ prefix is accepted).
type RaidReplaceRequest struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// RaidBackend is the md RAID arrays, served under /v1/raid by a Backend
// that also implements it. Errors wrap the store's sentinels like
// Backend's: no such array or member is ErrNotFound, a request md cannot
// do now (degraded, busy, bad name) is ErrInvalid.
type RaidBackend interface {
	RaidStatus(ctx context.Context) (RaidStatus, error)
	// ScrubRaid starts a check of every copy of the array's data and
	// returns the array once the check has started.
	ScrubRaid(ctx context.Context, array string) (RaidArray, error)
	// ReplaceRaidMember rebuilds r.Old's data onto r.New and returns the
	// array once the rebuild has started.
	ReplaceRaidMember(ctx context.Context, array string, r RaidReplaceRequest) (RaidArray, error)
}

// RaidAdoptRequest makes the blank disk Disk a member disk like From
// (kernel names like sdc; a /dev/ prefix is accepted). From "" lets the
// server pick the disk with the most in-sync members.
type RaidAdoptRequest struct {
	Disk string `json:"disk"`
	From string `json:"from,omitempty"`
}

// RaidAdoptJoin is one partition of the adopted disk added to an array.
type RaidAdoptJoin struct {
	// Partition is the new member (sdc2); Array the array it joined.
	Partition string `json:"partition"`
	Array     string `json:"array"`
}

// RaidAdoptResult is a disk adopted: partitioned like From, its ESP a copy
// of From's, its partitions added to the arrays, which rebuild them.
type RaidAdoptResult struct {
	Disk string `json:"disk"`
	From string `json:"from"`
	// ESPSHA256 is the SHA-256 both ESPs have; "" without an ESP.
	ESPSHA256 string          `json:"esp_sha256"`
	Added     []RaidAdoptJoin `json:"added"`
	// Arrays are the arrays joined, as their rebuilds start.
	Arrays []RaidArray `json:"arrays"`
}

// RaidESPSyncRequest makes every member disk's ESP a copy of From's
// ("" lets the server pick the disk with the most in-sync members).
type RaidESPSyncRequest struct {
	From string `json:"from,omitempty"`
}

// RaidESPDisk is one disk's ESP before and after the sync.
type RaidESPDisk struct {
	Disk string `json:"disk"`
	// Before and After are the ESP's SHA-256.
	Before string `json:"before"`
	After  string `json:"after"`
	// Copied is set when the ESP differed from From's and was rewritten.
	Copied bool `json:"copied"`
}

// RaidESPSyncResult lists every member disk's ESP, From's first.
type RaidESPSyncResult struct {
	From  string        `json:"from"`
	Disks []RaidESPDisk `json:"disks"`
}

// RaidDiskBackend works on whole member disks; a Backend that also
// implements it serves POST /v1/raid/adopt and /v1/raid/esp-sync.
type RaidDiskBackend interface {
	// AdoptRaidDisk partitions a blank disk like a member disk, copies
	// the ESP and adds the partitions to their arrays. A disk that is
	// not blank, too small, or a source that is not a healthy member
	// disk is ErrInvalid (nothing was written); a missing disk
	// ErrNotFound.
	AdoptRaidDisk(ctx context.Context, r RaidAdoptRequest) (RaidAdoptResult, error)
	// SyncRaidESP rewrites every member disk's ESP that differs from
	// r.From's (after an update of that ESP, say).
	SyncRaidESP(ctx context.Context, r RaidESPSyncRequest) (RaidESPSyncResult, error)
}

// NormRaidESPSyncResult gives the wire form fixed shapes.
func NormRaidESPSyncResult(r RaidESPSyncResult) RaidESPSyncResult {
	if r.Disks == nil {
		r.Disks = []RaidESPDisk{}
	}
	return r
}

// SyncRaidESP makes every member disk's ESP a copy of r.From's.
func (c *Client) SyncRaidESP(ctx context.Context, r RaidESPSyncRequest) (RaidESPSyncResult, error) {
	var res RaidESPSyncResult
	err := c.do(ctx, http.MethodPost, "/v1/raid/esp-sync", r, &res)
	return res, err
}

// NormRaidAdoptResult gives the wire form fixed shapes: never a null list.
func NormRaidAdoptResult(r RaidAdoptResult) RaidAdoptResult {
	if r.Added == nil {
		r.Added = []RaidAdoptJoin{}
	}
	arrays := make([]RaidArray, 0, len(r.Arrays))
	for _, a := range r.Arrays {
		arrays = append(arrays, NormRaidArray(a))
	}
	r.Arrays = arrays
	return r
}

var _ RaidDiskBackend = (*Client)(nil)

// AdoptRaidDisk adopts a blank disk (see RaidDiskBackend) and returns
// what was done as the rebuilds start.
func (c *Client) AdoptRaidDisk(ctx context.Context, r RaidAdoptRequest) (RaidAdoptResult, error) {
	var res RaidAdoptResult
	err := c.do(ctx, http.MethodPost, "/v1/raid/adopt", r, &res)
	return res, err
}

// NormRaidArray gives the wire form fixed shapes: never a null list.
func NormRaidArray(a RaidArray) RaidArray {
	if a.Members == nil {
		a.Members = []RaidMember{}
	}
	for i := range a.Members {
		if a.Members[i].State == nil {
			a.Members[i].State = []string{}
		}
	}
	return a
}

// NormRaidStatus gives the wire form fixed shapes: never a null list.
func NormRaidStatus(s RaidStatus) RaidStatus {
	out := RaidStatus{Arrays: make([]RaidArray, 0, len(s.Arrays))}
	for _, a := range s.Arrays {
		out.Arrays = append(out.Arrays, NormRaidArray(a))
	}
	return out
}

// raidRoutes are the RAID routes for NewHandler's table.
func raidRoutes(h *handler, rb RaidBackend) map[string]map[string]http.HandlerFunc {
	rh := &raidHandler{handler: h, rb: rb}
	routes := map[string]map[string]http.HandlerFunc{
		"/v1/raid":                 {"GET": rh.status},
		"/v1/raid/{array}/scrub":   {"POST": rh.scrub},
		"/v1/raid/{array}/replace": {"POST": rh.replace},
	}
	if db, ok := rb.(RaidDiskBackend); ok {
		routes["/v1/raid/adopt"] = map[string]http.HandlerFunc{"POST": rh.adopt(db)}
		routes["/v1/raid/esp-sync"] = map[string]http.HandlerFunc{"POST": rh.espSync(db)}
	}
	return routes
}

type raidHandler struct {
	*handler
	rb RaidBackend
}

func (h *raidHandler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.rb.RaidStatus(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NormRaidStatus(st))
}

func (h *raidHandler) scrub(w http.ResponseWriter, r *http.Request) {
	array := r.PathValue("array")
	a, err := h.rb.ScrubRaid(r.Context(), array)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("raid check started", "array", array)
	writeJSON(w, http.StatusAccepted, NormRaidArray(a))
}

func (h *raidHandler) replace(w http.ResponseWriter, r *http.Request) {
	var req RaidReplaceRequest
	if !h.decode(w, r, &req) {
		return
	}
	array := r.PathValue("array")
	a, err := h.rb.ReplaceRaidMember(r.Context(), array, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("raid member replacement started", "array", array, "old", req.Old, "new", req.New)
	writeJSON(w, http.StatusAccepted, NormRaidArray(a))
}

func (h *raidHandler) adopt(ab RaidDiskBackend) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req RaidAdoptRequest
		if !h.decode(w, r, &req) {
			return
		}
		res, err := ab.AdoptRaidDisk(r.Context(), req)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.log.Info("raid disk adopted", "disk", res.Disk, "from", res.From, "added", len(res.Added))
		writeJSON(w, http.StatusAccepted, NormRaidAdoptResult(res))
	}
}

func (h *raidHandler) espSync(db RaidDiskBackend) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req RaidESPSyncRequest
		if !h.decode(w, r, &req) {
			return
		}
		res, err := db.SyncRaidESP(r.Context(), req)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		copied := 0
		for _, d := range res.Disks {
			if d.Copied {
				copied++
			}
		}
		h.log.Info("raid ESPs synced", "from", res.From, "disks", len(res.Disks), "copied", copied)
		writeJSON(w, http.StatusOK, NormRaidESPSyncResult(res))
	}
}
