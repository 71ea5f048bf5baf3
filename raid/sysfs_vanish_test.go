package raid

import (
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

// enodevFS answers ENODEV for files under one directory, as sysfs does
// for the attributes of a member md is deleting.
type enodevFS struct {
	fs.FS
	dir string
}

func (f enodevFS) Open(name string) (fs.File, error) {
	if strings.HasPrefix(name, f.dir+"/") {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENODEV}
	}
	return f.FS.Open(name)
}

func TestReadArrayMemberVanishing(t *testing.T) {
	block, _ := hotplugSys()
	a, err := ReadArray(enodevFS{block, "md0/md/dev-vdb"}, "md0")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Members) != 1 || a.Members[0].Name != "vda" {
		t.Errorf("members %+v; want only vda", a.Members)
	}
}
