package raid

import (
	"context"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// fakeRunner records calls; a call whose args contain a key of fail runs
// sh to exit with that stderr and status, so errors are real ExitErrors.
type fakeRunner struct {
	calls  [][]string
	stdout string
	fail   map[string]string // arg -> stderr
}

func (f *fakeRunner) run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	f.calls = append(f.calls, append([]string{name}, args...))
	for _, a := range args {
		if stderr, ok := f.fail[a]; ok {
			cmd := exec.CommandContext(ctx, "sh", "-c", `printf '%s' "$1" >&2; exit 1`, "sh", stderr)
			var errBuf strings.Builder
			cmd.Stderr = &errBuf
			err := cmd.Run()
			return nil, []byte(errBuf.String()), err
		}
	}
	return []byte(f.stdout), nil, nil
}

func TestCreateArgs(t *testing.T) {
	tests := []struct {
		spec CreateSpec
		want string
		err  string
	}{
		{CreateSpec{Device: "/dev/md0", Level: RAID1, Devices: []string{"/dev/vda", "/dev/vdb"}},
			"--create /dev/md0 --run --level=1 --metadata=1.2 --bitmap=internal --raid-devices=2 /dev/vda /dev/vdb", ""},
		{CreateSpec{Device: "/dev/md/ftnas-data", Name: "ftnas-data", Homehost: "ftnas", Level: RAID6, Devices: []string{"a", "b", "c", "missing"}, AssumeClean: true, Bitmap: "none"},
			"--create /dev/md/ftnas-data --run --level=6 --metadata=1.2 --bitmap=none --raid-devices=4 --name=ftnas-data --homehost=ftnas --assume-clean a b c missing", ""},
		{CreateSpec{Device: "/dev/md1", Level: RAID1, Devices: []string{"/dev/sda2"}, Metadata: "1.0"},
			"--create /dev/md1 --run --level=1 --metadata=1.0 --bitmap=internal --raid-devices=1 --force /dev/sda2", ""},
		{CreateSpec{Level: RAID1, Devices: []string{"a"}}, "", "no Device"},
		{CreateSpec{Device: "/dev/md0", Level: "raid7", Devices: []string{"a"}}, "", `unknown level "raid7"`},
		{CreateSpec{Device: "/dev/md0", Level: RAID5, Devices: []string{"a", "b"}}, "", "raid5 needs at least 3 devices, got 2"},
		{CreateSpec{Device: "/dev/md0", Level: RAID1, Devices: []string{"missing", "missing"}}, "", "all devices are missing"},
		{CreateSpec{Device: "/dev/md0", Level: RAID1, Devices: []string{"a", ""}}, "", "empty device name"},
		{CreateSpec{Device: "/dev/md0", Level: RAID1, Devices: []string{"a"}, Bitmap: "external"}, "", `bitmap "external"`},
	}
	for _, tt := range tests {
		got, err := CreateArgs(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CreateArgs(%+v) error = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("CreateArgs(%+v) =\n%s, %v\nwant\n%s", tt.spec, strings.Join(got, " "), err, tt.want)
		}
	}
}

func TestMdadmCommands(t *testing.T) {
	f := &fakeRunner{}
	m := &Mdadm{Path: "/sbin/mdadm", Run: f.run}
	ctx := context.Background()
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { return m.Fail(ctx, "/dev/md0", "/dev/vdb") }, "/sbin/mdadm --manage /dev/md0 --fail /dev/vdb"},
		{func() error { return m.Remove(ctx, "/dev/md0", "/dev/vdb") }, "/sbin/mdadm --manage /dev/md0 --remove /dev/vdb"},
		{func() error { return m.ReAdd(ctx, "/dev/md0", "/dev/vdb") }, "/sbin/mdadm --manage /dev/md0 --re-add /dev/vdb"},
		{func() error { return m.Add(ctx, "/dev/md0", "/dev/vdc") }, "/sbin/mdadm --manage /dev/md0 --add /dev/vdc"},
		{func() error { return m.Stop(ctx, "/dev/md0") }, "/sbin/mdadm --stop /dev/md0"},
		{func() error { return m.Assemble(ctx, "/dev/md0", []string{"/dev/vda", "/dev/vdb"}, false) }, "/sbin/mdadm --assemble /dev/md0 /dev/vda /dev/vdb"},
		{func() error { return m.Assemble(ctx, "/dev/md0", []string{"/dev/vda"}, true) }, "/sbin/mdadm --assemble /dev/md0 --run /dev/vda"},
		{func() error {
			return m.Create(ctx, CreateSpec{Device: "/dev/md0", Level: RAID10, Devices: []string{"a", "b"}})
		}, "/sbin/mdadm --create /dev/md0 --run --level=10 --metadata=1.2 --bitmap=internal --raid-devices=2 a b"},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := strings.Join(f.calls[len(f.calls)-1], " "); got != s.want {
			t.Errorf("step %d ran %q, want %q", i, got, s.want)
		}
	}
	n := len(f.calls)
	for _, bad := range []error{
		m.Fail(ctx, "", "/dev/vdb"), m.Add(ctx, "/dev/md0", ""), m.Stop(ctx, ""),
		m.Assemble(ctx, "/dev/md0", nil, true),
		m.Create(ctx, CreateSpec{Device: "/dev/md0", Level: RAID6, Devices: []string{"a"}}),
	} {
		if bad == nil {
			t.Error("bad arguments accepted")
		}
	}
	if len(f.calls) != n {
		t.Errorf("bad arguments still ran mdadm: %v", f.calls[n:])
	}
}

func TestMdadmErrors(t *testing.T) {
	f := &fakeRunner{fail: map[string]string{
		"--remove": "mdadm: hot remove failed for /dev/vdb: No such device or address\n",
		"/dev/vdc": "mdadm: No md superblock detected on /dev/vdc.\n",
		"/dev/bad": "mdadm: cannot open /dev/bad: No such file or directory\n",
	}}
	m := &Mdadm{Run: f.run}
	ctx := context.Background()
	err := m.Remove(ctx, "/dev/md0", "/dev/vdb")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Remove error = %v, want *Error", err)
	}
	if e.ExitCode != 1 || e.Message != "hot remove failed for /dev/vdb: No such device or address" {
		t.Errorf("Error = %+v", e)
	}
	if want := "raid: mdadm --manage /dev/md0 --remove /dev/vdb: exit 1: hot remove failed for /dev/vdb: No such device or address"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if f.calls[0][0] != "mdadm" {
		t.Errorf("default binary = %q", f.calls[0][0])
	}
	sb, err := m.Examine(ctx, "/dev/vdc")
	if err != nil || sb.Populated {
		t.Errorf("Examine of a blank disk = %+v, %v; want empty, nil", sb, err)
	}
	if _, err := m.Examine(ctx, "/dev/bad"); err == nil || !strings.Contains(err.Error(), "cannot open /dev/bad") {
		t.Errorf("Examine of a missing disk = %v", err)
	}
	// A command that cannot run at all.
	m2 := &Mdadm{Path: "/nonexistent/mdadm"}
	if err := m2.Stop(ctx, "/dev/md0"); !errors.As(err, &e) || e.ExitCode != -1 {
		t.Errorf("missing mdadm: %v", err)
	}
}

func TestParseMessage(t *testing.T) {
	in := "mdadm: Note: this array has metadata at the start\n    may not be suitable as a boot device.\n\nmdadm: array /dev/md0 started.\n"
	want := "Note: this array has metadata at the start; may not be suitable as a boot device.; array /dev/md0 started."
	if got := ParseMessage(in); got != want {
		t.Errorf("ParseMessage = %q, want %q", got, want)
	}
}

// Captured from mdadm 4.2 in the qemu test.
const examineVDA = `MD_LEVEL=raid1
MD_DEVICES=2
MD_NAME=ftnas:test
MD_ARRAY_SIZE=66.06MB
MD_UUID=99dca20b:7ba40002:f1efc63d:282faac3
MD_UPDATE_TIME=1795463749
MD_DEV_UUID=820f211f:f24c0d8a:7d865755:ca8308ab
MD_EVENTS=17
`

func TestParseExport(t *testing.T) {
	sb, err := ParseExport(examineVDA)
	if err != nil {
		t.Fatal(err)
	}
	want := Superblock{UUID: "99dca20b:7ba40002:f1efc63d:282faac3", Name: "ftnas:test", Level: "raid1", Devices: 2,
		DevUUID: "820f211f:f24c0d8a:7d865755:ca8308ab", Events: 17, Populated: true}
	sb.Fields = nil
	if !reflect.DeepEqual(sb, want) {
		t.Errorf("ParseExport = %+v, want %+v", sb, want)
	}
	for _, bad := range []string{"MD_LEVEL raid1", "=x", "MD_DEVICES=two", "MD_EVENTS=-1"} {
		if _, err := ParseExport(bad); err == nil {
			t.Errorf("ParseExport(%q) succeeded", bad)
		}
	}
	if sb, err := ParseExport(""); err != nil || sb.Populated {
		t.Errorf("empty export = %+v, %v", sb, err)
	}
}

func FuzzParseExport(f *testing.F) {
	f.Add(examineVDA)
	f.Fuzz(func(t *testing.T, s string) {
		sb, err := ParseExport(s)
		if err == nil && (sb.Devices < 0 || sb.Events < 0 || sb.Populated != (sb.UUID != "")) {
			t.Fatalf("ParseExport(%q) = %+v", s, sb)
		}
	})
}
