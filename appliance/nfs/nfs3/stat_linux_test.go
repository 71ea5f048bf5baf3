package nfs3

import "syscall"

type syscallStat = syscall.Stat_t
