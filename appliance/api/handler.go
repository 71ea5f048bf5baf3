package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"strings"
	"time"

	"ftnas/appliance/store"
)

type handler struct {
	b   Backend
	log *slog.Logger
	mux *http.ServeMux
}

// NewHandler returns the API's HTTP handler serving b. Request and
// response bodies are JSON; errors are {"error":"..."}. Requests are
// logged at debug level (method, path, status, duration — never bodies,
// so never passwords); Backend failures that map to 500 at error level.
func NewHandler(b Backend, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{b: b, log: log, mux: http.NewServeMux()}
	routes := map[string]map[string]http.HandlerFunc{
		"/v1/status":                {"GET": h.status},
		"/v1/shares":                {"GET": h.listShares, "POST": h.addShare},
		"/v1/shares/{name}":         {"DELETE": h.removeShare},
		"/v1/users":                 {"GET": h.listUsers, "POST": h.addUser},
		"/v1/users/{name}":          {"DELETE": h.removeUser},
		"/v1/users/{name}/password": {"PUT": h.setPassword},
	}
	if cb, ok := b.(ClusterBackend); ok {
		maps.Copy(routes, clusterRoutes(h, cb))
	}
	if bb, ok := b.(BondBackend); ok {
		maps.Copy(routes, bondRoutes(h, bb))
	}
	if rb, ok := b.(RaidBackend); ok {
		maps.Copy(routes, raidRoutes(h, rb))
	}
	if ub, ok := b.(UpdateBackend); ok {
		maps.Copy(routes, updateRoutes(h, ub))
	}
	if ib, ok := b.(InstallBackend); ok {
		maps.Copy(routes, installRoutes(h, ib))
	}
	for path, methods := range routes {
		var allow []string
		for m, fn := range methods {
			h.mux.HandleFunc(m+" "+path, fn)
			allow = append(allow, m)
		}
		sort.Strings(allow)
		allowed := strings.Join(allow, ", ")
		h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowed)
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path+"; use "+allowed)
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return h
}

// statusWriter remembers the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	h.mux.ServeHTTP(sw, r)
	h.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
}

// StatusFor maps a Backend error to an HTTP status.
func StatusFor(err error) int {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.status
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := StatusFor(err)
	if code >= 500 {
		h.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeError(w, code, err.Error())
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeRequest(r.Header.Get("Content-Type"), r.Body, v); err != nil {
		h.fail(w, r, err)
		return false
	}
	return true
}

// normShare gives the wire form fixed shapes: never a null client list.
func normShare(s Share) Share {
	if s.Clients == nil {
		s.Clients = []string{}
	}
	return s
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.b.Status(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if st.Services == nil {
		st.Services = []Service{}
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) listShares(w http.ResponseWriter, r *http.Request) {
	shares, err := h.b.ListShares(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]Share, 0, len(shares))
	for _, s := range shares {
		out = append(out, normShare(s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) addShare(w http.ResponseWriter, r *http.Request) {
	var req AddShareRequest
	if !h.decode(w, r, &req) {
		return
	}
	if !req.NFS && !req.SMB {
		req.NFS, req.SMB = true, true
	}
	s, err := h.b.AddShare(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("share added", "share", s.Name, "path", s.Path, "nfs", s.NFS, "smb", s.SMB)
	writeJSON(w, http.StatusCreated, normShare(s))
}

func (h *handler) removeShare(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.b.RemoveShare(r.Context(), name); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("share removed", "share", name)
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := h.b.ListUsers(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if users == nil {
		users = []User{}
	}
	writeJSON(w, http.StatusOK, users)
}

func (h *handler) addUser(w http.ResponseWriter, r *http.Request) {
	var req AddUserRequest
	if !h.decode(w, r, &req) {
		return
	}
	u, err := h.b.AddUser(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("user added", "user", u.Name, "uid", u.UID)
	writeJSON(w, http.StatusCreated, u)
}

func (h *handler) removeUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.b.RemoveUser(r.Context(), name); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("user removed", "user", name)
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) setPassword(w http.ResponseWriter, r *http.Request) {
	var req PasswordRequest
	if !h.decode(w, r, &req) {
		return
	}
	name := r.PathValue("name")
	if err := h.b.SetPassword(r.Context(), name, req.Password); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("password changed", "user", name)
	w.WriteHeader(http.StatusNoContent)
}
