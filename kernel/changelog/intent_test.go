package changelog

import (
	"errors"
	"testing"
)

func TestParseSyscall(t *testing.T) {
	st, ok, err := parseSyscall("257 0xffffff9c 0x7ffd8a2b1f30 0x241 0x1b6 0x0 0x0 0x7ffd8a2b1e48 0x7f3a1c2e8a3b\n")
	if err != nil || !ok || st.Nr != 257 || st.Args[0] != 0xffffff9c || st.Args[2] != 0x241 || st.Args[3] != 0x1b6 {
		t.Errorf("openat: %+v %v %v", st, ok, err)
	}
	for _, idle := range []string{"running\n", "-1 0x7ffd8a2b1e48 0x7f3a1c2e8a3b\n"} {
		if _, ok, err := parseSyscall(idle); ok || err != nil {
			t.Errorf("%q: ok %v err %v", idle, ok, err)
		}
	}
	for _, bad := range []string{"", "257 0x1 0x2", "x 0 0 0 0 0 0 0 0", "2 0x1 zz 0x3 0x4 0x5 0x6 0x7 0x8"} {
		if _, _, err := parseSyscall(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWriteIntent(t *testing.T) {
	o := openSyscalls{flagsArg: map[int64]int{257: 2, 2: 1}, creat: 85, openat2: 437, readOnly: map[int64]bool{59: true}}
	how := map[uint64]uint64{0x1000: 0o1 | 0o100, 0x2000: 0o0}
	readHow := func(addr uint64) (uint64, error) {
		v, ok := how[addr]
		if !ok {
			return 0, errors.New("EFAULT")
		}
		return v, nil
	}
	for _, c := range []struct {
		name         string
		st           syscallState
		write, known bool
	}{
		{"openat read", syscallState{Nr: 257, Args: [6]uint64{0, 0, 0o0}}, false, true},
		{"openat read+creat", syscallState{Nr: 257, Args: [6]uint64{0, 0, 0o100}}, false, true},
		{"openat write", syscallState{Nr: 257, Args: [6]uint64{0, 0, 0o1 | 0o1000 | 0o100}}, true, true},
		{"openat rdwr", syscallState{Nr: 257, Args: [6]uint64{0, 0, 0o2}}, true, true},
		{"openat read+trunc", syscallState{Nr: 257, Args: [6]uint64{0, 0, 0o1000}}, true, true},
		{"open write", syscallState{Nr: 2, Args: [6]uint64{0, 0o1}}, true, true},
		{"creat", syscallState{Nr: 85}, true, true},
		{"openat2 write", syscallState{Nr: 437, Args: [6]uint64{0, 0, 0x1000}}, true, true},
		{"openat2 read", syscallState{Nr: 437, Args: [6]uint64{0, 0, 0x2000}}, false, true},
		{"openat2 unreadable", syscallState{Nr: 437, Args: [6]uint64{0, 0, 0x3000}}, false, false},
		{"execve", syscallState{Nr: 59}, false, true},
		{"other call", syscallState{Nr: 426}, false, false},
	} {
		w, k := o.writeIntent(c.st, readHow)
		if w != c.write || k != c.known {
			t.Errorf("%s: write %v known %v, want %v %v", c.name, w, k, c.write, c.known)
		}
	}
}
