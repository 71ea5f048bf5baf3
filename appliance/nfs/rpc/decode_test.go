package rpc

import (
	"slices"
	"strings"
	"testing"

	"ftnas/appliance/nfs/rpc/rpctest"
	"ftnas/appliance/nfs/xdr"
)

func authSysBody(machine string, uid, gid uint32, ngids int, trailing int) []byte {
	w := xdr.NewWriter(nil)
	w.Uint32(7)
	w.String(machine)
	w.Uint32(uid)
	w.Uint32(gid)
	w.Uint32(uint32(ngids))
	for i := range ngids {
		w.Uint32(uint32(100 + i))
	}
	for range trailing {
		w.Uint32(0)
	}
	return w.Bytes()
}

func TestDecodeCall(t *testing.T) {
	args := []byte{0, 0, 0, 42}
	sys := rpctest.Cred{Flavor: FlavorSys, Body: authSysBody("host", 1000, 100, 2, 0)}
	call := func(cred rpctest.Cred) []byte { return rpctest.EncodeCall(9, 100003, 3, 1, cred, args) }
	tests := []struct {
		name    string
		msg     []byte
		want    outcome
		auth    AuthStat
		wantErr string
	}{
		{"auth none", call(rpctest.None), outcomeDispatch, 0, ""},
		{"auth sys", call(sys), outcomeDispatch, 0, ""},
		{"auth sys 16 gids", call(rpctest.Cred{Flavor: 1, Body: authSysBody("h", 0, 0, 16, 0)}), outcomeDispatch, 0, ""},
		{"auth sys 17 gids", call(rpctest.Cred{Flavor: 1, Body: authSysBody("h", 0, 0, 17, 0)}), outcomeAuthError, AuthBadCred, "17 gids, at most 16"},
		{"machine name 255", call(rpctest.Cred{Flavor: 1, Body: authSysBody(strings.Repeat("m", 255), 0, 0, 0, 0)}), outcomeDispatch, 0, ""},
		{"machine name 256", call(rpctest.Cred{Flavor: 1, Body: authSysBody(strings.Repeat("m", 256), 0, 0, 0, 0)}), outcomeAuthError, AuthBadCred, "string length 256 exceeds 255"},
		{"auth sys trailing", call(rpctest.Cred{Flavor: 1, Body: authSysBody("h", 0, 0, 0, 1)}), outcomeAuthError, AuthBadCred, "trailing"},
		{"auth sys short", call(rpctest.Cred{Flavor: 1, Body: authSysBody("h", 0, 0, 3, 0)[:20]}), outcomeAuthError, AuthBadCred, "AUTH_SYS credential: xdr: short buffer"},
		{"cred over 400", call(rpctest.Cred{Flavor: 1, Body: make([]byte, 404)}), outcomeAuthError, AuthBadCred, "opaque length 404 exceeds 400"},
		{"gss flavor", call(rpctest.Cred{Flavor: 6, Body: []byte{1, 2, 3, 4}}), outcomeAuthError, AuthTooWeak, "unsupported auth flavor 6"},
		{"rpc version 3", rpctest.EncodeCallVersion(9, 3, 1, 1, 1, rpctest.None, nil), outcomeRPCMismatch, 0, "RPC version 3"},
		{"reply message", []byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0}, outcomeNotCall, 0, "message type 1"},
		{"only xid", []byte{0, 0, 0, 9}, outcomeShort, 0, "no room for XID"},
		{"empty", nil, outcomeShort, 0, "no room"},
		{"truncated header", call(rpctest.None)[:16], outcomeGarbage, 0, "call header"},
		{"truncated cred", call(sys)[:32], outcomeAuthError, AuthBadCred, "credential"},
		{"truncated verifier", call(sys)[:len(call(sys))-len(args)-2], outcomeAuthError, AuthBadVerf, "verifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cb callBuf
			o, a, err := decodeCall(tt.msg, &cb, &nameCache{})
			if o != tt.want || a != tt.auth {
				t.Fatalf("outcome %d auth %v (err %v), want %d %v", o, a, err, tt.want, tt.auth)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if o != outcomeDispatch {
				return
			}
			c := &cb.call
			if c.XID != 9 || c.Prog != 100003 || c.Vers != 3 || c.Proc != 1 {
				t.Errorf("header %+v", c)
			}
			if got := c.Args.Uint32(); got != 42 || c.Args.Remaining() != 0 {
				t.Errorf("args: %d, %d remaining", got, c.Args.Remaining())
			}
			if (c.Flavor == FlavorSys) != (c.Unix != nil) {
				t.Errorf("flavor %d but Unix %v", c.Flavor, c.Unix)
			}
		})
	}
}

func TestDecodeAuthSysFields(t *testing.T) {
	var cb callBuf
	names := &nameCache{}
	msg := rpctest.EncodeCall(1, 2, 3, 4, rpctest.Sys("client7", 1001, 50, 4, 5, 6), nil)
	if o, _, err := decodeCall(msg, &cb, names); o != outcomeDispatch {
		t.Fatal(err)
	}
	u := cb.call.Unix
	if u.Machine != "client7" || u.UID != 1001 || u.GID != 50 || !slices.Equal(u.GIDs, []uint32{4, 5, 6}) {
		t.Fatalf("AuthSys %+v", u)
	}
	allocs := testing.AllocsPerRun(100, func() { decodeCall(msg, &cb, names) })
	if allocs != 0 {
		t.Fatalf("decoding a call with a repeated machine name allocates %v times", allocs)
	}
}
