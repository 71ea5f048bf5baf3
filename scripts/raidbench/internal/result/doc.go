// Package result holds what the RAID guest of scripts/raidbench reports
// to the host ("raidbench: summary {json}"): the guest program and the
// host program share these types.
package result
