package raid

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
)

// Level is an md RAID level as mdadm and sysfs spell it.
type Level string

// Levels ftnas builds.
const (
	RAID1  Level = "raid1"
	RAID5  Level = "raid5"
	RAID6  Level = "raid6"
	RAID10 Level = "raid10"
)

// MinDisks is the fewest members an array of the level is built with.
func (l Level) MinDisks() (int, error) {
	switch l {
	case RAID1:
		return 1, nil
	case RAID10:
		return 2, nil
	case RAID5:
		return 3, nil
	case RAID6:
		return 4, nil
	}
	return 0, fmt.Errorf("raid: unknown level %q (want raid1, raid5, raid6 or raid10)", string(l))
}

// Runner runs a command and returns its stdout and stderr. err is non-nil
// when it could not run or exited non-zero (an *exec.ExitError).
type Runner func(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)

// ExecRunner runs commands with os/exec.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// Error is a failed mdadm run.
type Error struct {
	Args     []string // mdadm's arguments
	ExitCode int      // -1 when mdadm did not run
	// Message is mdadm's complaint: its "mdadm: " lines without the
	// prefix, joined with "; ".
	Message string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("raid: mdadm %s: exit %d: %s", strings.Join(e.Args, " "), e.ExitCode, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// ParseMessage extracts mdadm's messages from its stderr: lines starting
// "mdadm: " lose the prefix; other non-blank lines are kept as they are.
func ParseMessage(stderr string) string {
	var parts []string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		parts = append(parts, strings.TrimSpace(strings.TrimPrefix(l, "mdadm:")))
	}
	return strings.Join(parts, "; ")
}

// Mdadm runs mdadm.
type Mdadm struct {
	// Path of mdadm; "" means "mdadm" on PATH.
	Path string
	// Run runs it; nil means ExecRunner.
	Run    Runner
	Logger *slog.Logger
}

func (m *Mdadm) run(ctx context.Context, args ...string) (string, error) {
	out, err := m.runQuiet(ctx, args...)
	var e *Error
	if errors.As(err, &e) && m.Logger != nil {
		m.Logger.Warn("raid: mdadm failed", "args", args, "exit", e.ExitCode, "message", e.Message)
	}
	return out, err
}

// runQuiet is run without the warning log, for failures that are answers.
func (m *Mdadm) runQuiet(ctx context.Context, args ...string) (string, error) {
	bin := m.Path
	if bin == "" {
		bin = "mdadm"
	}
	run := m.Run
	if run == nil {
		run = ExecRunner
	}
	if m.Logger != nil {
		m.Logger.Debug("raid: mdadm", "args", args)
	}
	stdout, stderr, err := run(ctx, bin, args...)
	if err != nil {
		e := &Error{Args: args, ExitCode: -1, Message: ParseMessage(string(stderr)), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			e.ExitCode = ee.ExitCode()
		}
		return "", e
	}
	return string(stdout), nil
}

// CreateSpec describes a new array.
type CreateSpec struct {
	// Device is the array device: /dev/md0 or /dev/md/NAME.
	Device string
	// Name is stored in the superblock ("" leaves mdadm's default).
	Name  string
	Level Level
	// Devices are the members; "missing" leaves a slot empty (a degraded
	// array).
	Devices []string
	// Metadata is the superblock version; "" means 1.2.
	Metadata string
	// Bitmap is "internal" (the default when ""), or "none".
	Bitmap string
	// AssumeClean skips the initial resync (blank disks only).
	AssumeClean bool
	// Homehost is stored in the superblock; "" leaves mdadm's default.
	Homehost string
}

// CreateArgs is mdadm's argument list for spec.
func CreateArgs(spec CreateSpec) ([]string, error) {
	if spec.Device == "" {
		return nil, errors.New("raid: create: no Device")
	}
	min, err := spec.Level.MinDisks()
	if err != nil {
		return nil, fmt.Errorf("raid: create %s: %w", spec.Device, err)
	}
	present := 0
	for _, d := range spec.Devices {
		if d == "" {
			return nil, fmt.Errorf("raid: create %s: empty device name", spec.Device)
		}
		if d != "missing" {
			present++
		}
	}
	if len(spec.Devices) < min {
		return nil, fmt.Errorf("raid: create %s: %s needs at least %d devices, got %d", spec.Device, spec.Level, min, len(spec.Devices))
	}
	if present == 0 {
		return nil, fmt.Errorf("raid: create %s: all devices are missing", spec.Device)
	}
	md := spec.Metadata
	if md == "" {
		md = "1.2"
	}
	bitmap := spec.Bitmap
	if bitmap == "" {
		bitmap = "internal"
	}
	if bitmap != "internal" && bitmap != "none" {
		return nil, fmt.Errorf("raid: create %s: bitmap %q: want internal or none", spec.Device, bitmap)
	}
	args := []string{"--create", spec.Device, "--run", "--level=" + strings.TrimPrefix(string(spec.Level), "raid"),
		"--metadata=" + md, "--bitmap=" + bitmap, "--raid-devices=" + strconv.Itoa(len(spec.Devices))}
	if spec.Name != "" {
		args = append(args, "--name="+spec.Name)
	}
	if spec.Homehost != "" {
		args = append(args, "--homehost="+spec.Homehost)
	}
	if spec.AssumeClean {
		args = append(args, "--assume-clean")
	}
	if len(spec.Devices) == 1 {
		args = append(args, "--force") // mdadm refuses a one-disk RAID1 without it
	}
	return append(args, spec.Devices...), nil
}

// Create creates an array and starts it.
func (m *Mdadm) Create(ctx context.Context, spec CreateSpec) error {
	args, err := CreateArgs(spec)
	if err != nil {
		return err
	}
	_, err = m.run(ctx, args...)
	return err
}

// Assemble starts an existing array from its members. With degraded set it
// starts even when members are missing (--run).
func (m *Mdadm) Assemble(ctx context.Context, device string, members []string, degraded bool) error {
	if device == "" || len(members) == 0 {
		return fmt.Errorf("raid: assemble %q: needs a device and members", device)
	}
	args := []string{"--assemble", device}
	if degraded {
		args = append(args, "--run")
	}
	_, err := m.run(ctx, append(args, members...)...)
	return err
}

// manage runs one --manage operation on one member.
func (m *Mdadm) manage(ctx context.Context, op, array, dev string) error {
	if array == "" || dev == "" {
		return fmt.Errorf("raid: %s: needs an array and a device", op)
	}
	_, err := m.run(ctx, "--manage", array, op, dev)
	return err
}

// Add adds dev to array: a spare, rebuilt at once when a slot is empty.
func (m *Mdadm) Add(ctx context.Context, array, dev string) error {
	return m.manage(ctx, "--add", array, dev)
}

// ReAdd puts back a member that was removed; with a bitmap only the
// regions written meanwhile are rebuilt.
func (m *Mdadm) ReAdd(ctx context.Context, array, dev string) error {
	return m.manage(ctx, "--re-add", array, dev)
}

// Fail marks a member faulty.
func (m *Mdadm) Fail(ctx context.Context, array, dev string) error {
	return m.manage(ctx, "--fail", array, dev)
}

// Remove takes a faulty or spare member out of the array.
func (m *Mdadm) Remove(ctx context.Context, array, dev string) error {
	return m.manage(ctx, "--remove", array, dev)
}

// Stop stops an array.
func (m *Mdadm) Stop(ctx context.Context, array string) error {
	if array == "" {
		return errors.New("raid: stop: no array")
	}
	_, err := m.run(ctx, "--stop", array)
	return err
}

// Superblock is what mdadm --examine --export says about a member.
type Superblock struct {
	UUID    string // MD_UUID: the array's UUID
	Name    string // MD_NAME
	Level   string // MD_LEVEL
	Devices int    // MD_DEVICES
	DevUUID string // MD_DEV_UUID: this member's UUID
	// Events is the superblock's event count (MD_EVENTS): a member whose
	// count lags the array's missed writes.
	Events    int64
	Fields    map[string]string
	Populated bool
}

// ParseExport parses mdadm's --export output: KEY=VALUE lines.
func ParseExport(out string) (Superblock, error) {
	sb := Superblock{Fields: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return Superblock{}, fmt.Errorf("raid: parse mdadm export: bad line %q", l)
		}
		sb.Fields[k] = strings.Trim(v, `'"`)
	}
	if err := sc.Err(); err != nil {
		return Superblock{}, fmt.Errorf("raid: parse mdadm export: %w", err)
	}
	sb.UUID = sb.Fields["MD_UUID"]
	sb.Name = sb.Fields["MD_NAME"]
	sb.Level = sb.Fields["MD_LEVEL"]
	sb.DevUUID = sb.Fields["MD_DEV_UUID"]
	if v := sb.Fields["MD_EVENTS"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return Superblock{}, fmt.Errorf("raid: parse mdadm export: MD_EVENTS=%q", v)
		}
		sb.Events = n
	}
	if v := sb.Fields["MD_DEVICES"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Superblock{}, fmt.Errorf("raid: parse mdadm export: MD_DEVICES=%q", v)
		}
		sb.Devices = n
	}
	sb.Populated = sb.UUID != ""
	return sb, nil
}

// Examine reads dev's md superblock. A device without one returns a
// Superblock with Populated false and no error.
func (m *Mdadm) Examine(ctx context.Context, dev string) (Superblock, error) {
	out, err := m.runQuiet(ctx, "--examine", "--export", dev)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && strings.Contains(e.Message, "No md superblock detected") {
			return Superblock{Fields: map[string]string{}}, nil
		}
		if errors.As(err, &e) && m.Logger != nil {
			m.Logger.Warn("raid: mdadm failed", "args", e.Args, "exit", e.ExitCode, "message", e.Message)
		}
		return Superblock{}, err
	}
	return ParseExport(out)
}

// ReplaceArgs is mdadm's argument list to rebuild member old onto new,
// which must already be a spare of array: old stays in service until new
// holds a full copy, then it is marked faulty.
func ReplaceArgs(array, old, new string) ([]string, error) {
	if array == "" || old == "" || new == "" {
		return nil, fmt.Errorf("raid: replace %q with %q in %q: needs an array, a member and a spare", old, new, array)
	}
	if old == new {
		return nil, fmt.Errorf("raid: replace %s in %s: the replacement is the member itself", old, array)
	}
	return []string{"--manage", array, "--replace", old, "--with", new}, nil
}

// Replace rebuilds member old of array onto the spare new (see
// ReplaceArgs); add new with Add first.
func (m *Mdadm) Replace(ctx context.Context, array, old, new string) error {
	args, err := ReplaceArgs(array, old, new)
	if err != nil {
		return err
	}
	_, err = m.run(ctx, args...)
	return err
}
