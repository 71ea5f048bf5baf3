package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"ftnas/appliance/store"
)

// maxResponseBytes bounds what the client reads from nasd.
const maxResponseBytes = 16 << 20

// Error is an error answered by nasd: its message and HTTP status. It
// matches store.ErrInvalid (400), store.ErrNotFound (404) and
// store.ErrExists (409) with errors.Is.
type Error struct {
	StatusCode int
	Message    string
}

func (e *Error) Error() string { return e.Message }

// Is maps the status back to the store's sentinels.
func (e *Error) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge:
		return target == store.ErrInvalid
	case http.StatusNotFound:
		return target == store.ErrNotFound
	case http.StatusConflict:
		return target == store.ErrExists
	}
	return false
}

// Client talks to nasd's API over its unix socket. It implements Backend.
type Client struct {
	socket string
	hc     *http.Client
}

var _ Backend = (*Client)(nil)

// NewClient returns a client for the nasd listening on socketPath. No
// connection is made until a method is called.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		DisableCompression: true,
		MaxIdleConns:       2,
	}
	return &Client{socket: socketPath, hc: &http.Client{Transport: tr}}
}

// Socket returns the socket path the client uses.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when out is non-nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if in == nil {
		return c.doBody(ctx, method, path, "", nil, out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("api: encode request: %w", err)
	}
	return c.doBody(ctx, method, path, "application/json", bytes.NewReader(b), out)
}

// doBody sends a request with body (nil: none) of contentType and
// decodes a JSON answer into out (when out is non-nil).
func (c *Client) doBody(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://nasd"+path, body)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("api: %s %s: read answer: %w", method, path, err)
	}
	if len(raw) > maxResponseBytes {
		return fmt.Errorf("api: %s %s: answer larger than %d bytes", method, path, maxResponseBytes)
	}
	if err := decodeResponse(resp.StatusCode, resp.Header.Get("Content-Type"), raw, out); err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			return err
		}
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	return nil
}

// connError explains a failure to reach nasd.
func (c *Client) connError(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("waiting for nasd on socket %s: %w", c.socket, err)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("cannot reach nasd: is nasd running? socket %s: %w", c.socket, rootCause(err))
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("cannot reach nasd: permission denied on socket %s (run as root?)", c.socket)
	}
	return fmt.Errorf("talk to nasd on socket %s: %w", c.socket, err)
}

// rootCause strips url.Error and net.OpError wrappers for a short message.
func rootCause(err error) error {
	var se *net.OpError
	if errors.As(err, &se) && se.Err != nil {
		if inner := errors.Unwrap(se.Err); inner != nil {
			return inner
		}
		return se.Err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeResponse turns an answer into out or into an *Error. A success
// with no body (204) leaves out alone.
func decodeResponse(status int, contentType string, raw []byte, out any) error {
	isJSON := false
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/json" {
		isJSON = true
	}
	if status < 200 || status > 299 {
		var eb errorBody
		if isJSON && json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
			return &Error{StatusCode: status, Message: eb.Error}
		}
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &Error{StatusCode: status, Message: fmt.Sprintf("nasd answered %d: %s", status, msg)}
	}
	if out == nil {
		return nil
	}
	if !isJSON {
		return fmt.Errorf("answer is %q, not JSON", contentType)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// ListShares returns every share.
func (c *Client) ListShares(ctx context.Context) ([]Share, error) {
	var out []Share
	err := c.do(ctx, http.MethodGet, "/v1/shares", nil, &out)
	return out, err
}

// AddShare adds a share.
func (c *Client) AddShare(ctx context.Context, r AddShareRequest) (Share, error) {
	var out Share
	err := c.do(ctx, http.MethodPost, "/v1/shares", r, &out)
	return out, err
}

// RemoveShare removes a share (its data stays).
func (c *Client) RemoveShare(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/shares/"+url.PathEscape(name), nil, nil)
}

// ListUsers returns every user.
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	err := c.do(ctx, http.MethodGet, "/v1/users", nil, &out)
	return out, err
}

// AddUser adds a user.
func (c *Client) AddUser(ctx context.Context, r AddUserRequest) (User, error) {
	var out User
	err := c.do(ctx, http.MethodPost, "/v1/users", r, &out)
	return out, err
}

// RemoveUser removes a user.
func (c *Client) RemoveUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(name), nil, nil)
}

// SetPassword sets a user's password.
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	return c.do(ctx, http.MethodPut, "/v1/users/"+url.PathEscape(name)+"/password", PasswordRequest{Password: password}, nil)
}
