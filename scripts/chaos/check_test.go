package main

import (
	"slices"
	"strings"
	"testing"
)

const ms = int64(1e6)

// hist builds a worker's history: each op takes 10 ms, one after the
// other, from t=1000 ms.
type hist struct {
	ops []Op
	t   int64
}

func (h *hist) add(mode string, w int, kind, file string, mut func(*Op)) *Op {
	if h.t == 0 {
		h.t = 1000 * ms
	}
	seq := 1
	for _, o := range h.ops {
		if o.Worker == w && o.Share == mode {
			seq++
		}
	}
	o := Op{Worker: w, Seq: seq, Share: mode, Mode: mode, Kind: kind, File: file, Invoke: h.t, Done: h.t + 10*ms, Result: ResultOK, Tries: 1}
	if mut != nil {
		mut(&o)
	}
	h.t = o.Done
	h.ops = append(h.ops, o)
	return &h.ops[len(h.ops)-1]
}

var (
	recA = strings.Repeat("a", 47) + "\n"
	recB = strings.Repeat("b", 47) + "\n"
	recC = strings.Repeat("c", 47) + "\n"
)

// basic: create f1, write A, append B, read, rename f1->f2, create f3,
// write C to f3, delete f3. Final: f2 = A+B.
func basic(mode string) *hist {
	h := &hist{}
	h.add(mode, 1, OpCreate, "f1", nil)
	h.add(mode, 1, OpWrite, "f1", func(o *Op) { o.Data = recA })
	h.add(mode, 1, OpAppend, "f1", func(o *Op) { o.Off, o.Data = 48, recB })
	h.add(mode, 1, OpRead, "f1", func(o *Op) { o.Data = recA + recB })
	h.add(mode, 1, OpRename, "f1", func(o *Op) { o.To = "f2" })
	h.add(mode, 1, OpCreate, "f3", nil)
	h.add(mode, 1, OpWrite, "f3", func(o *Op) { o.Data = recC })
	h.add(mode, 1, OpDelete, "f3", nil)
	return h
}

func trees(mode string, master, standby map[string]string) Trees {
	return Trees{"n1": {mode: master}, "n2": {mode: standby}}
}

func pairSamples(n int, t0 int64) []Sample {
	var out []Sample
	for i := range n {
		out = append(out, Sample{T: t0 + int64(i)*50*ms, Nodes: []NodeSample{
			{Name: "n1", Running: true, Up: true, State: "master", Serving: true, Epoch: 1, VIP: true},
			{Name: "n2", Running: true, Up: true, State: "slave", Epoch: 1},
		}})
	}
	return out
}

func TestCheckClean(t *testing.T) {
	h := basic("sync")
	good := map[string]string{"f2": recA + recB}
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", good, good), Master: "n1", Standby: "n2", Samples: pairSamples(20, 0), End: h.t})
	if r.Failed() || r.LostSync != 0 || r.StandbyLostSync != 0 || r.LostAsync != 0 || r.SplitBrains != 0 || len(r.Problems) != 0 {
		t.Fatalf("a clean trial is reported as %+v", r)
	}
	if r.Ops != 8 || r.Acked != 8 || r.MaxStallMS != 10 {
		t.Fatalf("counts: %+v", r)
	}
}

func TestCheckLostSyncAppend(t *testing.T) {
	h := basic("sync")
	master := map[string]string{"f2": recA} // B lost
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", master, master), Master: "n1", Standby: "n2", End: h.t})
	if !r.Failed() || r.LostSync != 1 || r.StandbyLostSync != 1 {
		t.Fatalf("a lost acknowledged append: %+v", r)
	}
	if l := r.Losses[0]; l.Kind != OpAppend || l.Seq != 3 || l.Node != "n1" {
		t.Fatalf("the loss names %+v, want the append (seq 3) on n1", l)
	}
}

func TestCheckLostOnStandbyOnly(t *testing.T) {
	h := basic("sync")
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", map[string]string{"f2": recA + recB}, map[string]string{"f2": recA + recB[:10]}),
		Master: "n1", Standby: "n2", End: h.t})
	if !r.Failed() || r.LostSync != 0 || r.StandbyLostSync != 1 {
		t.Fatalf("a sync write missing on the caught-up standby: %+v", r)
	}
}

func TestCheckMetadataLosses(t *testing.T) {
	h := basic("sync")
	// The rename is lost (f1 still there, f2 missing) and the delete too.
	master := map[string]string{"f1": recA + recB, "f3": recC}
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", master, master), Master: "n1", Standby: "n2", End: h.t})
	kinds := map[string]int{}
	for _, l := range r.Losses {
		if l.Node == "n1" {
			kinds[l.Kind]++
		}
	}
	if kinds[OpRename] != 1 || kinds[OpDelete] != 1 {
		t.Fatalf("lost rename and delete: %+v", r.Losses)
	}
}

// An abandoned try of a create can reach the server after the worker
// renamed the file away (chaos seed 80): the old name is back, empty.
// That is an indeterminate op landing late, not a lost rename; the same
// name back with data, or back without a retried create, still is.
func TestCheckLateCreateTry(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tries    int
		f1       string
		wantLost int
	}{
		{"retried create, empty name back", 2, "", 0},
		{"retried create, data back", 2, recA, 1},
		{"create on the first try, empty name back", 1, "", 1},
	} {
		h := &hist{}
		h.add("sync", 1, OpCreate, "f1", func(o *Op) { o.Tries = tc.tries })
		h.add("sync", 1, OpWrite, "f1", func(o *Op) { o.Data = recB })
		h.add("sync", 1, OpRename, "f1", func(o *Op) { o.To = "f2" })
		final := map[string]string{"f1": tc.f1, "f2": recB}
		r := Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
		if r.LostSync != tc.wantLost {
			t.Errorf("%s: lost %d, want %d: %+v", tc.name, r.LostSync, tc.wantLost, r.Losses)
		}
	}
}

// A write acknowledged on its second try: the abandoned first try's call
// can land after later writes to the same range (chaos seed 15), so its
// bytes standing there in the end, or read meanwhile, are no loss; other
// stale bytes still are.
func TestCheckLateWriteTry(t *testing.T) {
	h := &hist{}
	h.add("sync", 1, OpCreate, "f1", nil)
	h.add("sync", 1, OpWrite, "f1", func(o *Op) { o.Data, o.Tries = recA, 2 })
	h.add("sync", 1, OpWrite, "f1", func(o *Op) { o.Data = recB })
	h.add("sync", 1, OpRead, "f1", func(o *Op) { o.Data = recA })
	final := map[string]string{"f1": recA}
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
	if r.Failed() || r.LostSync != 0 || r.ReadMismatchSync != 0 {
		t.Fatalf("a late try's bytes counted as a loss: %+v", r)
	}
	final = map[string]string{"f1": recC}
	r = Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
	if r.LostSync == 0 {
		t.Fatalf("bytes no try wrote not counted: %+v", r)
	}
}

// A create and a rename of the created file, both acknowledged on a later
// try: their abandoned tries may land late, in order, and leave the
// rename's target empty (chaos seed 11). That is no loss; the same end
// after a rename acknowledged at once is.
func TestCheckLateCreateAndRenameTries(t *testing.T) {
	for _, tc := range []struct {
		name        string
		renameTries int
		wantLost    bool
	}{
		{"rename on its second try", 2, false},
		{"rename on its first try", 1, true},
	} {
		h := &hist{}
		h.add("sync", 1, OpCreate, "f1", func(o *Op) { o.Tries = 2 })
		h.add("sync", 1, OpWrite, "f1", func(o *Op) { o.Data = recA })
		h.add("sync", 1, OpRename, "f1", func(o *Op) { o.To, o.Tries = "f2", tc.renameTries })
		final := map[string]string{"f2": ""}
		r := Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
		if lost := r.LostSync > 0; lost != tc.wantLost {
			t.Errorf("%s: lost %d, want lost %v: %+v", tc.name, r.LostSync, tc.wantLost, r.Losses)
		}
	}
}

func TestCheckAsyncLossWindow(t *testing.T) {
	h := basic("async")
	samples := pairSamples(10, 900*ms)
	// n2 takes over (epoch 2) at 1500 ms; n1 gone.
	for i := range 10 {
		samples = append(samples, Sample{T: 1500*ms + int64(i)*50*ms, Nodes: []NodeSample{
			{Name: "n1", VIP: false},
			{Name: "n2", Running: true, Up: true, State: "primaryslave", Serving: true, Epoch: 2, VIP: true},
		}})
	}
	master := map[string]string{"f2": recA} // the append (done at 1030 ms) lost
	r := Check(CheckInput{Ops: h.ops, Final: Trees{"n2": {"async": master}, "n1": {"async": master}}, Master: "n2", Standby: "n1", Samples: samples, End: 3000 * ms})
	if r.Failed() {
		t.Fatalf("async loss is not a failure: %+v", r)
	}
	if r.LostAsync != 1 || r.LostSync != 0 {
		t.Fatalf("lost async: %+v", r)
	}
	if r.AsyncLossWindowMS != 1500-1030 {
		t.Fatalf("window %d ms, want %d", r.AsyncLossWindowMS, 1500-1030)
	}
	if r.SplitBrains != 0 {
		t.Fatalf("a clean takeover counted as split brain: %v", r.Problems)
	}
}

func TestCheckReadSeesLoss(t *testing.T) {
	h := &hist{}
	h.add("sync", 1, OpCreate, "f", nil)
	h.add("sync", 1, OpWrite, "f", func(o *Op) { o.Data = recA })
	h.add("sync", 1, OpRead, "f", func(o *Op) { o.Data = "" }) // the write is not there
	h.add("sync", 1, OpWrite, "f", func(o *Op) { o.Data = recB })
	final := map[string]string{"f": recB} // and it was overwritten since
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
	if !r.Failed() || r.ReadMismatchSync != 1 || r.LostSync != 1 {
		t.Fatalf("a read that missed an acknowledged sync write: %+v", r)
	}
}

func TestCheckStaleHandle(t *testing.T) {
	h := basic("async")
	h.ops[3].Stale = 1
	good := map[string]string{"f2": recA + recB}
	r := Check(CheckInput{Ops: h.ops, Final: trees("async", good, good), Master: "n1", Standby: "n2", End: h.t})
	if !r.Failed() || r.StaleHandles != 1 {
		t.Fatalf("a stale handle: %+v", r)
	}
}

func TestCheckUncertainNotLost(t *testing.T) {
	h := &hist{}
	h.add("sync", 1, OpCreate, "f", nil)
	h.add("sync", 1, OpWrite, "f", func(o *Op) { o.Data = recA })
	h.add("sync", 1, OpAppend, "f", func(o *Op) { o.Off, o.Data, o.Result = 48, recB, ResultInfo })
	final := map[string]string{} // whatever: the file is uncertain
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
	if r.Failed() || r.LostSync != 0 || r.Uncertain != 1 || r.Info != 1 {
		t.Fatalf("an op the client gave up makes its file uncertain, not lost: %+v", r)
	}
}

func TestCheckFailedOpHasNoEffect(t *testing.T) {
	h := &hist{}
	h.add("sync", 1, OpCreate, "f", nil)
	h.add("sync", 1, OpDelete, "f", func(o *Op) { o.Result, o.Err = ResultFail, "NFS3ERR_IO" })
	final := map[string]string{"f": ""}
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
	if r.Failed() {
		t.Fatalf("a refused delete left the file, as it should: %+v", r)
	}
}

func TestCheckSplitBrainSameEpoch(t *testing.T) {
	s := pairSamples(5, 0)
	s[2].Nodes[1].Serving, s[2].Nodes[1].State = true, "primaryslave" // epoch 1 too
	r := Check(CheckInput{Samples: s})
	if r.SplitBrains != 1 || !r.Failed() {
		t.Fatalf("two nodes serving in epoch 1: %+v", r)
	}
	// Different epochs in one sample: the old master has not noticed yet;
	// its lease fence covers it. Not a split brain.
	s[2].Nodes[1].Epoch = 2
	if r := Check(CheckInput{Samples: s}); r.SplitBrains != 0 {
		t.Fatalf("serving in different epochs counted: %v", r.Problems)
	}
}

func TestCheckSplitBrainVIP(t *testing.T) {
	s := pairSamples(8, 0)
	s[3].Nodes[1].VIP = true
	if r := Check(CheckInput{Samples: s}); r.SplitBrains != 0 {
		t.Fatalf("one sample of both holding the VIP (a handover in between) counted: %v", r.Problems)
	}
	s[4].Nodes[1].VIP = true
	s[6].Nodes[1].VIP = true
	s[7].Nodes[1].VIP = true
	r := Check(CheckInput{Samples: s})
	if r.SplitBrains != 2 {
		t.Fatalf("two episodes of both holding the VIP: %d, %v", r.SplitBrains, r.Problems)
	}
	// A frozen holder cannot let go; its fence does.
	for i := range s {
		s[i].Nodes[0].Running, s[i].Nodes[0].Frozen = false, true
	}
	if r := Check(CheckInput{Samples: s}); r.SplitBrains != 0 {
		t.Fatalf("a frozen node's VIP counted: %v", r.Problems)
	}
}

func TestCheckStallP99(t *testing.T) {
	h := &hist{}
	for i := range 200 {
		h.add("sync", 1, OpRead, "f", func(o *Op) {
			o.Result = ResultFail
			if i == 199 {
				o.Done = o.Invoke + 3000*ms
			}
		})
	}
	r := Check(CheckInput{Ops: h.ops})
	if r.MaxStallMS != 3000 || r.P99StallMS != 10 {
		t.Fatalf("max %d p99 %d, want 3000 and 10", r.MaxStallMS, r.P99StallMS)
	}
}

func TestCheckNoMasterNoFinalJudgement(t *testing.T) {
	h := basic("sync")
	r := Check(CheckInput{Ops: h.ops, End: h.t})
	if r.LostSync != 0 {
		t.Fatalf("without a final master nothing can be compared: %+v", r)
	}
}

func TestCheckNameGoneIsAMissedRead(t *testing.T) {
	h := &hist{}
	h.add("sync", 1, OpCreate, "f", nil)
	h.add("sync", 1, OpWrite, "f", func(o *Op) { o.Data = recA })
	h.add("sync", 1, OpAppend, "f", func(o *Op) { o.Off, o.Data, o.Result, o.Err = 48, recB, ResultFail, errNameGone })
	final := map[string]string{"f": recA} // back later (resynced)
	r := Check(CheckInput{Ops: h.ops, Final: trees("sync", final, final), Master: "n1", Standby: "n2", End: h.t})
	if !r.Failed() || r.ReadMismatchSync != 1 || r.LostSync != 1 {
		t.Fatalf("a file of acknowledged sync writes gone for a while: %+v", r)
	}
}

// TestCheckSMBLossApart: an SMB worker's lost write (SMB is replicated
// asynchronously on every share) is counted as an SMB loss, with its
// read mismatch, and does not fail the trial.
func TestCheckSMBLossApart(t *testing.T) {
	h := basic(ModeSMB)
	for i := range h.ops {
		h.ops[i].Share = "sync" // an SMB worker on the sync share
	}
	// The final master lost the append (the read saw it, so the loss
	// came with the takeover).
	final := map[string]string{"f2": recA}
	r := Check(CheckInput{Ops: h.ops, Final: Trees{"n1": {"sync": final}, "n2": {"sync": final}}, Master: "n1", Standby: "n2",
		Samples: pairSamples(10, 900*ms), End: 3000 * ms})
	if r.Failed() {
		t.Fatalf("an SMB loss failed the trial: %+v", r)
	}
	if r.LostSMB != 1 || r.LostSync != 0 || r.LostAsync != 0 || r.StandbyLostSync != 0 {
		t.Fatalf("lost smb %d sync %d async %d standby-sync %d, want 1 0 0 0: %+v", r.LostSMB, r.LostSync, r.LostAsync, r.StandbyLostSync, r.Losses)
	}
}

// TestDiverged: a standby file missing, extra or with other contents is
// listed, an identical one is not, and a trial with one fails.
func TestDiverged(t *testing.T) {
	trees := Trees{
		"n1": {"async": {"a": "x", "b": "y", "c": "z"}, "sync": {"s": "1"}},
		"n2": {"async": {"a": "x", "b": "Y", "d": "w", "f": "v", "e": "u"}, "sync": {"s": "1"}, "smb": {"e": ""}, "b": {"x": ""}},
	}
	got := Diverged(trees, "n1", "n2")
	want := []string{
		"async/b: 1 bytes on the master, 1 other ones on the standby",
		"async/c: missing on the standby",
		"async/d: only on the standby",
		"async/e: only on the standby",
		"async/f: only on the standby",
		"b/x: only on the standby",
		"smb/e: only on the standby",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Diverged = %q, want %q", got, want)
	}
	if d := Diverged(trees, "n1", "n1"); d != nil {
		t.Errorf("a node differs from itself: %q", d)
	}
	r := Check(CheckInput{Final: trees, Master: "n1", Standby: "n2"})
	if r.Diverged != 7 || !r.Failed() || !strings.Contains(strings.Join(r.Problems, "\n"), "the standby is no copy: async/c") {
		t.Fatalf("Check: diverged %d, failed %v, problems %q", r.Diverged, r.Failed(), r.Problems)
	}
}
