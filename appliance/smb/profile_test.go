package smb

import "testing"

func TestParseProfile(t *testing.T) {
	out := []byte(`**** SMBD loop ****************************************************************
connect_count:                                                                2
**** SMB2 ****
smb2_read_count:                                                              1
smb2_read_inbytes:                                                          113
smb2_read_outbytes:                                                     1000080
smb2_write_count:                                                             3
smb2_write_inbytes:                                                     1000112
`)
	c, err := ParseProfile(out)
	if err != nil {
		t.Fatal(err)
	}
	ops, rd, wr := c.SMB2()
	if ops["read"] != 1 || ops["write"] != 3 || rd != 1000080 || wr != 1000112 || c["connect_count"] != 2 {
		t.Fatalf("ops %v read %d write %d", ops, rd, wr)
	}
	if _, ok := ops["read_inbytes"]; ok {
		t.Fatal("byte counters counted as operations")
	}
	if _, err := ParseProfile([]byte("smb2_read_count: lots\n")); err == nil {
		t.Fatal("accepted a non-number")
	}
}
