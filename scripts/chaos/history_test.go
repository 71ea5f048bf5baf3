package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func sampleOps() []Op {
	return []Op{
		{Worker: 1, Seq: 1, Share: "sync", Mode: "sync", Kind: OpCreate, File: "t1-w1-1", Invoke: 10, Done: 20, Result: ResultOK, Tries: 1},
		{Worker: 1, Seq: 2, Share: "sync", Mode: "sync", Kind: OpAppend, File: "t1-w1-1", Off: 48, Data: "x\n", Invoke: 30, Done: 90, Result: ResultOK, Tries: 3, Stale: 1},
		{Worker: 2, Seq: 1, Share: "async", Mode: "async", Kind: OpRename, File: "a", To: "b", Invoke: 30, Done: 40, Result: ResultFail, Err: "ENOENT", Tries: 1},
		{Worker: 2, Seq: 2, Share: "async", Mode: "async", Kind: OpRead, File: "b", Data: "", Invoke: 50, Done: 60050, Result: ResultInfo, Err: "gave up", Tries: 9},
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	var b bytes.Buffer
	for _, o := range sampleOps() {
		if err := WriteOp(&b, o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ParseHistory(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleOps()) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, sampleOps())
	}
}

func TestHistoryTornLastLine(t *testing.T) {
	var b bytes.Buffer
	for _, o := range sampleOps()[:2] {
		WriteOp(&b, o)
	}
	b.WriteString(`{"w":1,"seq":3,"share":"sy`) // the writer was killed mid-line
	got, err := ParseHistory(&b)
	if err != nil || len(got) != 2 {
		t.Fatalf("a torn last line: %d ops, %v; want the 2 whole ones", len(got), err)
	}
}

func TestHistoryBadLines(t *testing.T) {
	good := `{"w":1,"seq":1,"share":"s","mode":"sync","op":"create","file":"f","invoke":1,"done":2,"result":"ok","tries":1}`
	for name, line := range map[string]string{
		"not json":      `hello`,
		"unknown field": strings.Replace(good, `"tries":1`, `"tries":1,"extra":2`, 1),
		"unknown op":    strings.Replace(good, `"create"`, `"chmod"`, 1),
		"unknown res":   strings.Replace(good, `"ok"`, `"maybe"`, 1),
		"bad mode":      strings.Replace(good, `"sync"`, `"fast"`, 1),
		"slash in name": strings.Replace(good, `"file":"f"`, `"file":"../f"`, 1),
		"dot name":      strings.Replace(good, `"file":"f"`, `"file":".."`, 1),
		"done first":    strings.Replace(good, `"done":2`, `"done":0`, 1),
		"rename no to":  strings.Replace(good, `"create"`, `"rename"`, 1),
		"to on write":   strings.Replace(good, `"file":"f"`, `"file":"f","to":"g"`, 1),
		"two objects":   good + good,
		"negative off":  strings.Replace(good, `"tries":1`, `"tries":1,"off":-1`, 1),
		"huge line":     strings.Replace(good, `"file":"f"`, `"file":"f","data":"`+strings.Repeat("x", maxLine)+`"`, 1),
	} {
		in := good + "\n" + line + "\n" + good + "\n"
		_, err := ParseHistory(strings.NewReader(in))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: error %q does not name line 2", name, err)
		}
	}
	if ops, err := ParseHistory(strings.NewReader("\n" + good + "\n\n")); err != nil || len(ops) != 1 {
		t.Fatalf("empty lines: %v, %d ops", err, len(ops))
	}
}

// FuzzParseHistory: a history file is written by another process (the
// client, possibly killed); parsing never panics, and whatever it accepts
// survives a write and a parse unchanged.
func FuzzParseHistory(f *testing.F) {
	var b bytes.Buffer
	for _, o := range sampleOps() {
		WriteOp(&b, o)
	}
	f.Add(b.Bytes())
	f.Add([]byte(`{"w":1,"seq":1,"share":"s","mode":"sync","op":"create","file":"f","invoke":1,"done":2,"result":"ok","tries":1}`))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte(`{"w":1,"seq":1,"share":"s","mode":"async","op":"rename","file":"f","to":"g","invoke":1,"done":2,"result":"info","tries":1}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := ParseHistory(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		for _, o := range ops {
			if err := o.validate(); err != nil {
				t.Fatalf("accepted an invalid op %+v: %v", o, err)
			}
			if err := WriteOp(&out, o); err != nil {
				t.Fatal(err)
			}
		}
		again, err := ParseHistory(&out)
		if err != nil {
			t.Fatalf("re-parse of accepted ops: %v", err)
		}
		if len(again) != len(ops) || (len(ops) > 0 && !reflect.DeepEqual(again, ops)) {
			t.Fatalf("round trip changed the ops:\n%+v\n%+v", ops, again)
		}
		// The checker takes any accepted history.
		Check(CheckInput{Ops: ops, Master: "n1", Final: Trees{}})
	})
}
