package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
)

// NodeSample is what the watcher saw of one node at one moment.
type NodeSample struct {
	Name string `json:"name"`
	// Running: nasd runs and is not frozen (SIGSTOP); only running nodes
	// count for a VIP split brain (a frozen kernel keeps the address; the
	// lease fence, not nasd, stops it answering).
	Running bool   `json:"running"`
	Frozen  bool   `json:"frozen,omitempty"`
	Up      bool   `json:"up"` // its cluster status answered
	State   string `json:"state,omitempty"`
	Serving bool   `json:"serving,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	VIP     bool   `json:"vip"`
}

// Sample is one round of the watcher: every node at about the same time.
type Sample struct {
	T     int64        `json:"t"` // unix ns
	Nodes []NodeSample `json:"nodes"`
}

// Trees are the final contents of the trial's files: node -> share ->
// file name -> content.
type Trees map[string]map[string]map[string]string

// CheckInput is everything the checker compares.
type CheckInput struct {
	Ops     []Op
	Final   Trees
	Master  string // the node serving at the end
	Standby string // the other node ("" for none)
	Samples []Sample
	End     int64 // unix ns: the trial's end (the client stopped)
}

// Loss is one acknowledged operation whose effect is not in the final
// state of a node.
type Loss struct {
	Node   string `json:"node"`
	Share  string `json:"share"`
	Mode   string `json:"mode"`
	Worker int    `json:"w"`
	Seq    int    `json:"seq"`
	Kind   string `json:"op"`
	File   string `json:"file"`
	Done   int64  `json:"done"`
	Why    string `json:"why"`
}

// Report is the checker's verdict on one trial.
type Report struct {
	Ops               int    `json:"ops"`
	Acked             int    `json:"acked"`
	Info              int    `json:"info"` // ops the client gave up on
	LostSync          int    `json:"lost_acked_writes_sync"`
	LostAsync         int    `json:"lost_acked_writes_async"`
	LostSMB           int    `json:"lost_acked_writes_smb"` // SMB writes: replicated asynchronously on every share
	StandbyLostSync   int    `json:"standby_lost_acked_writes_sync"`
	AsyncLossWindowMS int64  `json:"async_loss_window_ms"`
	Losses            []Loss `json:"losses,omitempty"`
	ReadMismatchSync  int    `json:"read_mismatch_sync"`
	ReadMismatchAsync int    `json:"read_mismatch_async"`
	ReadMismatchSMB   int    `json:"read_mismatch_smb"`
	StaleHandles      int    `json:"stale_handles"`
	SplitBrains       int    `json:"split_brains"`
	// Diverged counts the files the standby holds otherwise than the
	// master once the pair converged (missing, extra, other contents):
	// every share, whatever its mode.
	Diverged   int      `json:"standby_diverged_files"`
	Problems   []string `json:"problems,omitempty"`
	MaxStallMS int64    `json:"client_max_stall_ms"`
	P99StallMS int64    `json:"client_p99_stall_ms"`
	Uncertain  int      `json:"uncertain_files"`
}

// Failed tells whether the trial broke a guarantee: a lost acknowledged
// sync write (on the master or the standby), a sync read that did not see
// an acknowledged write, a stale handle, a split brain, or a standby that
// is no copy of the master once the pair converged.
func (r Report) Failed() bool {
	return r.LostSync > 0 || r.StandbyLostSync > 0 || r.ReadMismatchSync > 0 || r.StaleHandles > 0 || r.SplitBrains > 0 || r.Diverged > 0
}

// Diverged lists the files whose standby copy differs from the master's
// in t (missing on one node, or other contents), in share and name
// order.
func Diverged(t Trees, master, standby string) []string {
	var out []string
	m, s := t[master], t[standby]
	for _, sh := range unionKeys(m, s) {
		for _, n := range unionKeys(m[sh], s[sh]) {
			mv, inM := m[sh][n]
			sv, inS := s[sh][n]
			switch {
			case !inS:
				out = append(out, fmt.Sprintf("%s/%s: missing on the standby", sh, n))
			case !inM:
				out = append(out, fmt.Sprintf("%s/%s: only on the standby", sh, n))
			case mv != sv:
				out = append(out, fmt.Sprintf("%s/%s: %d bytes on the master, %d other ones on the standby", sh, n, len(mv), len(sv)))
			}
		}
	}
	return out
}

// unionKeys is the keys of a and b, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	keys := append(slices.Collect(maps.Keys(a)), slices.Collect(maps.Keys(b))...)
	slices.Sort(keys)
	return slices.Compact(keys)
}

// fileModel is what a file must hold: its bytes and, per byte, the index
// (in CheckInput.Ops) of the acknowledged op that wrote it (-1: a hole).
type fileModel struct {
	data  []byte
	owner []int
	meta  int // the op that made the file exist under this name
	// late are the writes acknowledged on a later try: the abandoned
	// try's call may still reach the server after later writes (the RPC
	// layer of the abandoned try reconnects and sends it again), so its
	// bytes may stand at its offset in the end, over newer ones.
	late []lateWrite
}

type lateWrite struct {
	off  int64
	data string
}

// lateExplains reports whether got differs from the model only by bytes
// late tries explain.
func (f *fileModel) lateExplains(got string) bool {
	if len(f.late) == 0 || len(got) != len(f.data) {
		return false
	}
	for j := range got {
		if got[j] != f.data[j] && !f.lateByte(j, got[j]) {
			return false
		}
	}
	return true
}

// lateByte reports whether byte j being b is explained by a late try.
func (f *fileModel) lateByte(j int, b byte) bool {
	for _, w := range f.late {
		if int64(j) >= w.off && int64(j) < w.off+int64(len(w.data)) && w.data[int64(j)-w.off] == b {
			return true
		}
	}
	return false
}

// workerModel replays one worker's acknowledged ops on one share.
type workerModel struct {
	share, mode string
	files       map[string]*fileModel
	removedBy   map[string]int // name -> op that removed it (delete, rename away)
	names       map[string]bool
	uncertain   map[string]bool
	readLost    map[int]int // acknowledged write -> the later read that missed it
	// lateCreate: names whose create was acknowledged on a later try. The
	// abandoned try's call may still reach the server after the worker
	// moved on (its TCP segments are retransmitted after the connection
	// was given up), and create the name again, empty, after the worker
	// renamed or deleted it: an indeterminate op taking effect late, not
	// a lost acknowledged one.
	lateCreate map[string]bool
	// lateRenameOver: names a rename acknowledged on a later try moved a
	// lateCreate name onto. Its abandoned try may land late too, after
	// the late create made the source again, empty, and move that empty
	// file over the name (chaos seed 11: both tries' calls were sent
	// again when the master came back from a restart): the name ending
	// up empty is the two indeterminate ops taking effect late.
	lateRenameOver map[string]bool
}

// Check compares the history with the final trees and the samples.
func Check(in CheckInput) Report {
	var r Report
	r.Ops = len(in.Ops)
	// Per worker and share, in seq order.
	type key struct {
		w     int
		share string
	}
	byWorker := map[key][]int{}
	var keys []key
	stalls := make([]int64, 0, len(in.Ops))
	for i, o := range in.Ops {
		k := key{o.Worker, o.Share}
		if _, ok := byWorker[k]; !ok {
			keys = append(keys, k)
		}
		byWorker[k] = append(byWorker[k], i)
		stalls = append(stalls, o.Stall())
		r.StaleHandles += o.Stale
		switch o.Result {
		case ResultOK:
			r.Acked++
		case ResultInfo:
			r.Info++
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.share != b.share {
			if a.share < b.share {
				return -1
			}
			return 1
		}
		return a.w - b.w
	})
	if len(stalls) > 0 {
		slices.Sort(stalls)
		r.MaxStallMS = stalls[len(stalls)-1] / 1e6
		r.P99StallMS = stalls[(len(stalls)*99+99)/100-1] / 1e6
	}
	lostOps := map[int]bool{}
	for _, k := range keys {
		idx := byWorker[k]
		sort.SliceStable(idx, func(a, b int) bool { return in.Ops[idx[a]].Seq < in.Ops[idx[b]].Seq })
		m := replay(in.Ops, idx, &r)
		r.Uncertain += len(m.uncertain)
		// Lost: missing from the final master, or missed by a later
		// read of the same worker (and overwritten since).
		lost := map[int]bool{}
		if in.Master != "" { // no master: the pair did not converge, no final state to judge
			for _, l := range m.compare(in.Ops, in.Master, in.Final[in.Master][m.share]) {
				lost[l.op] = true
				r.Losses = append(r.Losses, l.Loss)
			}
		}
		readLost := make([]int, 0, len(m.readLost))
		for i := range m.readLost {
			readLost = append(readLost, i)
		}
		slices.Sort(readLost)
		for _, i := range readLost {
			if lost[i] {
				continue
			}
			lost[i] = true
			o, rd := in.Ops[i], in.Ops[m.readLost[i]]
			r.Losses = append(r.Losses, Loss{Node: "read", Share: o.Share, Mode: o.Mode, Worker: o.Worker, Seq: o.Seq, Kind: o.Kind,
				File: o.File, Done: o.Done, Why: fmt.Sprintf("read seq %d of %s did not return it", rd.Seq, rd.File)})
		}
		for i := range lost {
			switch m.mode {
			case "sync":
				r.LostSync++
			case ModeSMB:
				r.LostSMB++
				lostOps[i] = true
			default:
				r.LostAsync++
				lostOps[i] = true
			}
		}
		if m.mode == "sync" && in.Standby != "" {
			for _, l := range m.compare(in.Ops, in.Standby, in.Final[in.Standby][m.share]) {
				r.StandbyLostSync++
				r.Losses = append(r.Losses, l.Loss)
			}
		}
	}
	takeovers := takeoverTimes(in.Samples)
	for i := range lostOps {
		done := in.Ops[i].Done
		until := in.End
		for _, t := range takeovers {
			if t >= done {
				until = t
				break
			}
		}
		if w := (until - done) / 1e6; w > r.AsyncLossWindowMS {
			r.AsyncLossWindowMS = w
		}
	}
	r.SplitBrains, r.Problems = splitBrains(in.Samples, r.Problems)
	if in.Master != "" && in.Standby != "" {
		d := Diverged(in.Final, in.Master, in.Standby)
		r.Diverged = len(d)
		for i, p := range d {
			if i == 5 {
				r.Problems = append(r.Problems, fmt.Sprintf("... %d more files differ on the standby", len(d)-5))
				break
			}
			r.Problems = append(r.Problems, "the standby is no copy: "+p)
		}
	}
	return r
}

// replay builds a worker's model from its ops (indices into ops, in seq
// order) and counts the reads that did not see the model.
func replay(ops []Op, idx []int, r *Report) *workerModel {
	m := &workerModel{files: map[string]*fileModel{}, removedBy: map[string]int{}, names: map[string]bool{}, uncertain: map[string]bool{}, readLost: map[int]int{}, lateCreate: map[string]bool{}, lateRenameOver: map[string]bool{}}
	for _, i := range idx {
		o := ops[i]
		m.share, m.mode = o.Share, o.Mode
		m.names[o.File] = true
		if o.To != "" {
			m.names[o.To] = true
		}
		if m.uncertain[o.File] || (o.To != "" && m.uncertain[o.To]) {
			continue
		}
		if o.Result == ResultInfo {
			m.uncertain[o.File] = true
			if o.To != "" {
				m.uncertain[o.To] = true
			}
			continue
		}
		f := m.files[o.File]
		if o.Result == ResultFail && o.Err == errNameGone && f != nil {
			// The server no longer had the file: like a read that
			// returned nothing.
			o.Kind, o.Data, o.Result = OpRead, "", ResultOK
		}
		if o.Result != ResultOK {
			continue
		}
		switch o.Kind {
		case OpCreate:
			if o.Tries > 1 {
				m.lateCreate[o.File] = true
			}
			if f == nil {
				m.files[o.File] = &fileModel{meta: i}
				delete(m.removedBy, o.File)
			}
		case OpWrite, OpAppend:
			if f == nil {
				// Acknowledged on a file the model does not have: an
				// earlier loss (async) made the worker's view diverge.
				m.uncertain[o.File] = true
				continue
			}
			if o.Tries > 1 {
				f.late = append(f.late, lateWrite{off: o.Off, data: o.Data})
			}
			end := o.Off + int64(len(o.Data))
			for int64(len(f.data)) < end {
				f.data = append(f.data, 0)
				f.owner = append(f.owner, -1)
			}
			copy(f.data[o.Off:], o.Data)
			for j := o.Off; j < end; j++ {
				f.owner[j] = i
			}
		case OpRead:
			var want string
			if f != nil {
				want = string(f.data)
			}
			if f == nil || o.Data != want && !f.lateExplains(o.Data) {
				// The acknowledged writes whose bytes the read did not
				// return were lost (at least for a while).
				if f != nil {
					for j, b := range f.data {
						if j >= len(o.Data) || o.Data[j] != b {
							if k := f.owner[j]; k >= 0 {
								m.readLost[k] = i
							}
						}
					}
				}
				switch o.Mode {
				case "sync":
					r.ReadMismatchSync++
				case ModeSMB:
					r.ReadMismatchSMB++
				default:
					r.ReadMismatchAsync++
				}
				what := "read"
				if o.Kind != ops[i].Kind {
					what = ops[i].Kind + " (" + errNameGone + ")"
				}
				r.Problems = append(r.Problems, fmt.Sprintf("%s w%d seq %d: %s %s returned %q, acknowledged writes say %q", o.Share, o.Worker, o.Seq, what, o.File, clip(o.Data), clip(want)))
			}
		case OpRename:
			if f == nil {
				m.uncertain[o.File] = true
				m.uncertain[o.To] = true
				continue
			}
			if o.Tries > 1 && m.lateCreate[o.File] {
				m.lateRenameOver[o.To] = true
			}
			f.meta = i
			m.files[o.To] = f
			delete(m.files, o.File)
			delete(m.removedBy, o.To)
			m.removedBy[o.File] = i
		case OpDelete:
			if f == nil {
				m.uncertain[o.File] = true
				continue
			}
			delete(m.files, o.File)
			m.removedBy[o.File] = i
		}
	}
	return m
}

type lossAt struct {
	Loss
	op int
}

// compare lists the acknowledged ops of the model whose effect node's tree
// lacks: bytes not as the op wrote them, a file missing, a file that
// should be gone.
func (m *workerModel) compare(ops []Op, node string, tree map[string]string) []lossAt {
	seen := map[int]bool{}
	var out []lossAt
	lose := func(i int, why string) {
		if i < 0 || seen[i] {
			return
		}
		seen[i] = true
		o := ops[i]
		out = append(out, lossAt{Loss{Node: node, Share: o.Share, Mode: o.Mode, Worker: o.Worker, Seq: o.Seq, Kind: o.Kind, File: o.File, Done: o.Done, Why: why}, i})
	}
	names := make([]string, 0, len(m.names))
	for n := range m.names {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		if m.uncertain[name] {
			continue
		}
		got, present := tree[name]
		f := m.files[name]
		switch {
		case f == nil && present:
			if got == "" && m.lateCreate[name] {
				continue // an abandoned try of its create, landed late
			}
			if i, ok := m.removedBy[name]; ok {
				lose(i, fmt.Sprintf("%s still exists", name))
			}
		case f != nil && !present:
			lose(f.meta, fmt.Sprintf("%s is missing", name))
			for _, i := range f.owner {
				lose(i, fmt.Sprintf("%s is missing", name))
			}
		case f != nil && got == "" && m.lateRenameOver[name]:
			continue // see lateRenameOver
		case f != nil:
			for j, b := range f.data {
				if j >= len(got) {
					lose(f.owner[j], fmt.Sprintf("%s is %d bytes, want %d", name, len(got), len(f.data)))
				} else if got[j] != b && !f.lateByte(j, got[j]) {
					lose(f.owner[j], fmt.Sprintf("%s differs at byte %d", name, j))
				}
			}
		}
	}
	return out
}

// takeoverTimes: the sample times at which a node serves in an epoch
// higher than any served before.
func takeoverTimes(samples []Sample) []int64 {
	var out []int64
	var top uint64
	first := true
	for _, s := range samples {
		for _, n := range s.Nodes {
			if n.Up && n.Serving && n.Epoch > top {
				if !first {
					out = append(out, s.T)
				}
				top, first = n.Epoch, false
			}
		}
	}
	return out
}

// splitBrains counts episodes (runs of consecutive samples) in which two
// nodes serve in the same epoch, or two running nodes hold the VIP for at
// least two samples in a row.
func splitBrains(samples []Sample, problems []string) (int, []string) {
	n := 0
	var t0 int64
	if len(samples) > 0 {
		t0 = samples[0].T
	}
	run, epochBad := 0, false
	var runStart int64
	var what string
	flush := func() {
		if run > 0 && (epochBad || run >= 2) {
			n++
			problems = append(problems, fmt.Sprintf("split brain at +%.2fs for %d samples: %s", float64(runStart-t0)/1e9, run, what))
		}
		run, epochBad = 0, false
	}
	for _, s := range samples {
		var serving, vip []NodeSample
		for _, x := range s.Nodes {
			if x.Up && x.Serving {
				serving = append(serving, x)
			}
			if x.Running && x.VIP {
				vip = append(vip, x)
			}
		}
		sameEpoch := false
		for a := range serving {
			for b := a + 1; b < len(serving); b++ {
				if serving[a].Epoch == serving[b].Epoch {
					sameEpoch = true
				}
			}
		}
		if !sameEpoch && len(vip) < 2 {
			flush()
			continue
		}
		if run == 0 {
			runStart = s.T
			what = ""
			if sameEpoch {
				what = fmt.Sprintf("%s and %s serve in epoch %d", serving[0].Name, serving[1].Name, serving[0].Epoch)
			} else {
				what = fmt.Sprintf("%s and %s both hold the VIP", vip[0].Name, vip[1].Name)
			}
		}
		run++
		epochBad = epochBad || sameEpoch
	}
	flush()
	return n, problems
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
