// Package installplan is what the host tells the installer guest
// (../installer) and what the guest answers: the disk layout, the slot
// images to copy onto arrays, and the summary line.
package installplan
