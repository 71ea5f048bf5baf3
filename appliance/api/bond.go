package api

import (
	"context"
	"net/http"
	"time"
)

// Bond routes, served when the Backend is also a BondBackend:
//
//	GET    /v1/bond                 -> 200 BondStatus
//	POST   /v1/bond/members         BondAddRequest -> 201 BondStatus
//	DELETE /v1/bond/members/{nic}   -> 204
//	PUT    /v1/bond/mode            BondModeRequest -> 200 BondStatus

// BondMember is one NIC of the bond as the API shows it.
type BondMember struct {
	Name string `json:"name"`
	// State is checking, up, down, recovering, or missing: configured but
	// not in the running bond (absent or refused at boot; nasd retries).
	State   string `json:"state"`
	Primary bool   `json:"primary"`
	// Active is true while the NIC carries outgoing traffic.
	Active  bool      `json:"active"`
	Carrier bool      `json:"carrier"`
	Since   time.Time `json:"since"`
	// Reason says why it entered State.
	Reason string `json:"reason"`
	// Failures counts the times it was taken out of rotation since nasd
	// started.
	Failures uint64 `json:"failures"`
}

// BondStatus is the network bond's configuration and state.
type BondStatus struct {
	// Bonded is true while the bond interface exists.
	Bonded bool `json:"bonded"`
	// Interface is the bond interface's name.
	Interface string `json:"interface"`
	// Datapath is userland (TAP + AF_PACKET) or kernel (bonding driver).
	Datapath string `json:"datapath"`
	// Mode is load-balance or failover.
	Mode string `json:"mode"`
	// ProbeTarget is the address ARP probes ask for; "" means members are
	// judged by carrier alone.
	ProbeTarget string `json:"probe_target"`
	IntervalMS  int64  `json:"interval_ms"`
	UpDelayMS   int64  `json:"up_delay_ms"`
	// MAC, MTU and Addresses are the bond's identity (from the primary);
	// empty while not bonded.
	MAC       string   `json:"mac"`
	MTU       int      `json:"mtu"`
	Addresses []string `json:"addresses"`
	// Active are the members carrying outgoing traffic, in rotation order.
	Active []string `json:"active"`
	// Members are the configured NICs in the order they were added; the
	// first is the primary.
	Members []BondMember `json:"members"`
	// Failovers counts the times a member carrying traffic was taken out
	// of rotation since nasd started.
	Failovers uint64 `json:"failovers"`
}

// BondAddRequest adds a NIC to the bond. ProbeTarget, if set, is the IPv4
// address ARP probes ask for (the gateway, say); it can be set or changed
// only while the bond is empty.
type BondAddRequest struct {
	NIC         string `json:"nic"`
	ProbeTarget string `json:"probe_target"`
}

// BondModeRequest sets the bond's mode: load-balance or failover.
type BondModeRequest struct {
	Mode string `json:"mode"`
}

// BondBackend is the network bond, served under /v1/bond by a Backend that
// also implements it. Errors should wrap the store's sentinels like
// Backend's.
type BondBackend interface {
	BondStatus(ctx context.Context) (BondStatus, error)
	AddBondMember(ctx context.Context, r BondAddRequest) (BondStatus, error)
	RemoveBondMember(ctx context.Context, nic string) error
	SetBondMode(ctx context.Context, mode string) (BondStatus, error)
}

// NormBondStatus gives the wire form fixed shapes: never a null list.
func NormBondStatus(s BondStatus) BondStatus {
	if s.Addresses == nil {
		s.Addresses = []string{}
	}
	if s.Active == nil {
		s.Active = []string{}
	}
	if s.Members == nil {
		s.Members = []BondMember{}
	}
	return s
}

// bondRoutes are the bond's routes for NewHandler's table.
func bondRoutes(h *handler, bb BondBackend) map[string]map[string]http.HandlerFunc {
	bh := &bondHandler{handler: h, bb: bb}
	return map[string]map[string]http.HandlerFunc{
		"/v1/bond":               {"GET": bh.status},
		"/v1/bond/members":       {"POST": bh.add},
		"/v1/bond/members/{nic}": {"DELETE": bh.remove},
		"/v1/bond/mode":          {"PUT": bh.mode},
	}
}

type bondHandler struct {
	*handler
	bb BondBackend
}

func (h *bondHandler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.bb.BondStatus(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NormBondStatus(st))
}

func (h *bondHandler) add(w http.ResponseWriter, r *http.Request) {
	var req BondAddRequest
	if !h.decode(w, r, &req) {
		return
	}
	st, err := h.bb.AddBondMember(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("bond member added", "nic", req.NIC)
	writeJSON(w, http.StatusCreated, NormBondStatus(st))
}

func (h *bondHandler) remove(w http.ResponseWriter, r *http.Request) {
	nic := r.PathValue("nic")
	if err := h.bb.RemoveBondMember(r.Context(), nic); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("bond member removed", "nic", nic)
	w.WriteHeader(http.StatusNoContent)
}

func (h *bondHandler) mode(w http.ResponseWriter, r *http.Request) {
	var req BondModeRequest
	if !h.decode(w, r, &req) {
		return
	}
	st, err := h.bb.SetBondMode(r.Context(), req.Mode)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("bond mode set", "mode", req.Mode)
	writeJSON(w, http.StatusOK, NormBondStatus(st))
}
