package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Op kinds.
const (
	OpCreate = "create"
	OpWrite  = "write"  // Data at Off (0 for a whole-record write)
	OpAppend = "append" // Data at Off, the end the worker expected
	OpRead   = "read"   // Data: what the read returned
	OpRename = "rename" // File to To
	OpDelete = "delete"
)

// Results: ok (acknowledged), fail (the server said no: no effect), info
// (the client gave up: the effect is unknown).
const (
	ResultOK   = "ok"
	ResultFail = "fail"
	ResultInfo = "info"
)

// errNameGone is the error of an op refused with NFS3ERR_STALE on a file
// whose name a fresh LOOKUP no longer finds: the server lost the file
// (or the acknowledged create) the worker's model says exists.
const errNameGone = "stale handle, and the name is gone"

// Op is one finished client operation, one line of a history file.
type Op struct {
	Worker int    `json:"w"`
	Seq    int    `json:"seq"`
	Share  string `json:"share"`
	Mode   string `json:"mode"` // the NFS share's sync or async, or smb (an SMB worker)
	Kind   string `json:"op"`
	File   string `json:"file"`
	To     string `json:"to,omitempty"`
	Off    int64  `json:"off,omitempty"`
	Data   string `json:"data,omitempty"`
	Invoke int64  `json:"invoke"` // unix ns
	Done   int64  `json:"done"`   // unix ns
	Result string `json:"result"`
	Err    string `json:"err,omitempty"`
	Tries  int    `json:"tries"`
	// Stale counts NFS3ERR_STALE answers to a handle of a file the
	// worker's model says exists.
	Stale int `json:"stale,omitempty"`
	// StaleID is the fileid the name had when looked up again after the
	// last stale answer (the same ID as the refused handle's: the server
	// briefly could not find the file; another: the file changed
	// identity).
	StaleID uint64 `json:"stale_id,omitempty"`
}

// History limits: a history is written by another process and read back.
const (
	maxLine     = 64 << 10
	maxData     = 16 << 10
	maxName     = 255
	maxHistOps  = 1 << 20
	maxWorkerID = 1 << 16
)

// Stall is how long the client waited for the operation.
func (o Op) Stall() int64 { return o.Done - o.Invoke }

// Mutates tells whether the operation changes the share.
func (o Op) Mutates() bool { return o.Kind != OpRead }

func (o Op) validate() error {
	switch o.Kind {
	case OpCreate, OpWrite, OpAppend, OpRead, OpRename, OpDelete:
	default:
		return fmt.Errorf("unknown op %q", o.Kind)
	}
	switch o.Result {
	case ResultOK, ResultFail, ResultInfo:
	default:
		return fmt.Errorf("unknown result %q", o.Result)
	}
	switch o.Mode {
	case "sync", "async", ModeSMB:
	default:
		return fmt.Errorf("unknown share mode %q", o.Mode)
	}
	if o.Worker < 0 || o.Worker >= maxWorkerID {
		return fmt.Errorf("worker %d out of range", o.Worker)
	}
	if o.Seq < 0 {
		return fmt.Errorf("negative seq %d", o.Seq)
	}
	if err := checkName(o.File); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	if o.Kind == OpRename {
		if err := checkName(o.To); err != nil {
			return fmt.Errorf("to: %w", err)
		}
	} else if o.To != "" {
		return fmt.Errorf("%s with a rename target", o.Kind)
	}
	if o.Share == "" || len(o.Share) > maxName {
		return fmt.Errorf("share name of %d bytes", len(o.Share))
	}
	if o.Off < 0 || o.Off > maxData {
		return fmt.Errorf("offset %d out of range", o.Off)
	}
	if len(o.Data) > maxData {
		return fmt.Errorf("data of %d bytes", len(o.Data))
	}
	if o.Invoke <= 0 || o.Done < o.Invoke {
		return fmt.Errorf("times invoke %d done %d", o.Invoke, o.Done)
	}
	if o.Tries < 0 || o.Stale < 0 {
		return errors.New("negative counter")
	}
	return nil
}

// checkName accepts a plain file name (no slash, no dot names).
func checkName(s string) error {
	if s == "" || len(s) > maxName || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("bad file name %q", s)
	}
	return nil
}

// WriteOp appends one op as a JSON line.
func WriteOp(w io.Writer, o Op) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("history: encode op: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("history: write op: %w", err)
	}
	return nil
}

// ParseHistory reads a history: one JSON op per line; empty lines are
// skipped. A torn last line (no newline: the writer was killed mid-line)
// is ignored; any other bad line is an error naming its number.
func ParseHistory(r io.Reader) ([]Op, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var ops []Op
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err == io.EOF {
			return ops, nil
		}
		if err == errTorn {
			return ops, nil
		}
		if err != nil {
			return nil, fmt.Errorf("history line %d: %w", n, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var o Op
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return nil, fmt.Errorf("history line %d: %w", n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("history line %d: trailing data", n)
		}
		if err := o.validate(); err != nil {
			return nil, fmt.Errorf("history line %d: %w", n, err)
		}
		if len(ops) >= maxHistOps {
			return nil, fmt.Errorf("history: more than %d ops", maxHistOps)
		}
		ops = append(ops, o)
	}
}

var errTorn = errors.New("torn last line")

// readLine returns one line without its newline, bounded by maxLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return nil, errTorn
		default:
			return nil, err
		}
	}
}
