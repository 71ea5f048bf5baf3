package result

// Window is one rebuild of one array as the guest saw it, sampled every
// 100 ms from sysfs.
type Window struct {
	Array string `json:"array"`
	// ComponentKiB is the size rebuilt on the new member.
	ComponentKiB int64 `json:"component_kib"`
	// StartS, EndS: seconds since the phase's reference (the disk or
	// the add); start is the first sample with the recovery running
	// (not delayed), end the first with the array healthy.
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// MBs is ComponentKiB*1024 bytes over EndS-StartS, in 10^6 B/s.
	MBs float64 `json:"mbs"`
	// MdSpeedKiBs is the mean of md's own sync_speed samples.
	MdSpeedKiBs float64 `json:"md_speed_kibs"`
	// CPUBusy is the guest CPU's busy share during the window, and Forks
	// the processes started in it (/proc/stat): what else ran.
	CPUBusy float64 `json:"cpu_busy"`
	Forks   int64   `json:"forks"`
}

// Phase is one phase's figures.
type Phase struct {
	// RemovedS: from the ready line to the pulled disk's members out of
	// every array (ftnas and re-add phases).
	RemovedS float64 `json:"removed_s,omitempty"`
	// CleanS: from the disk's return (its block device seen) or the
	// manual --add to every array healthy with it.
	CleanS float64  `json:"clean_s"`
	Data   Window   `json:"data"`
	Others []Window `json:"others,omitempty"`
	// Actions are the Manager's (kind array device ok).
	Actions     []string `json:"actions,omitempty"`
	WriteErrors int64    `json:"write_errors"`
	Writes      int64    `json:"writes"`
}

// Summary is what the host reads.
type Summary struct {
	SpeedMin  int               `json:"speed_limit_min"`
	SpeedMax  int               `json:"speed_limit_max"`
	Arrays    map[string]string `json:"arrays"` // md name → array name
	DataLevel string            `json:"data_level"`
	DataKiB   int64             `json:"data_component_kib"`
	InitialS  float64           `json:"initial_s"`
	// WarmupS is the warm-up check of the data array before the phases.
	WarmupS   float64 `json:"warmup_s"`
	Ftnas     Phase   `json:"ftnas"`
	Manual    Phase   `json:"manual"`
	ReAdd     Phase   `json:"readd"`
	Verified  int     `json:"verified_chunks"`
	BadChunks int     `json:"bad_chunks"`
	WriteErrs int64   `json:"write_errors"`
	Writes    int64   `json:"writes"`
	// ManualFirst: the rebuild by hand ran before ftnas's.
	ManualFirst bool   `json:"manual_first"`
	ClientNote  string `json:"client"`
}
