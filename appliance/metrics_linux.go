package appliance

import (
	"net/http"

	"ftnas/appliance/nfs/nfs3"
	"ftnas/appliance/nfs/rpc"
	"ftnas/appliance/smb"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are nasd's Prometheus metrics, on a registry of their own.
type metrics struct {
	reg         *prometheus.Registry
	nfsOps      *prometheus.CounterVec
	nfsErrors   *prometheus.CounterVec
	nfsBytes    *prometheus.CounterVec
	rpcCalls    *prometheus.CounterVec
	serviceUp   *prometheus.GaugeVec
	smbRestarts prometheus.GaugeFunc
}

func newMetrics(smbRestarts func() float64, smbCounters func() (smb.Counters, bool)) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		nfsOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ftnas_nfs_ops_total", Help: "NFSv3 operations served, by procedure.",
		}, []string{"op"}),
		nfsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ftnas_nfs_errors_total", Help: "NFSv3 operations that failed, by procedure and nfsstat3.",
		}, []string{"op", "status"}),
		nfsBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ftnas_nfs_bytes_total", Help: "File data bytes moved by NFS READ and WRITE.",
		}, []string{"direction"}),
		rpcCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ftnas_rpc_calls_total", Help: "ONC RPC calls, by program and result.",
		}, []string{"program", "result"}),
		serviceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ftnas_service_healthy", Help: "1 when the service passed its last health check.",
		}, []string{"service"}),
	}
	m.smbRestarts = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ftnas_smbd_restarts", Help: "Times the supervisor restarted smbd since nasd started.",
	}, smbRestarts)
	m.reg.MustRegister(m.nfsOps, m.nfsErrors, m.nfsBytes, m.rpcCalls, m.serviceUp, m.smbRestarts,
		smbCollector(smbCounters), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observeNFS is the nfs3.Observer.
func (m *metrics) observeNFS(proc uint32, st nfs3.Status, rd, wr int) {
	op := nfs3.ProcName(proc)
	m.nfsOps.WithLabelValues(op).Inc()
	if st != nfs3.OK {
		m.nfsErrors.WithLabelValues(op, statusName(st)).Inc()
	}
	if rd > 0 {
		m.nfsBytes.WithLabelValues("read").Add(float64(rd))
	}
	if wr > 0 {
		m.nfsBytes.WithLabelValues("write").Add(float64(wr))
	}
}

func statusName(st nfs3.Status) string {
	switch st {
	case nfs3.ErrNoEnt:
		return "noent"
	case nfs3.ErrAcces:
		return "acces"
	case nfs3.ErrExist:
		return "exist"
	case nfs3.ErrStale:
		return "stale"
	case nfs3.ErrNotEmpty:
		return "notempty"
	case nfs3.ErrROFS:
		return "rofs"
	case nfs3.ErrIO:
		return "io"
	case nfs3.ErrBadHandle:
		return "badhandle"
	}
	return "other"
}

var (
	smbOpsDesc = prometheus.NewDesc("ftnas_smb_ops_total",
		"SMB2 requests smbd has served since it started, by operation (smbd profile counters; they reset when smbd restarts).", []string{"op"}, nil)
	smbBytesDesc = prometheus.NewDesc("ftnas_smb_bytes_total",
		"File data bytes smbd has read and written for clients since it started.", []string{"direction"}, nil)
)

// smbCollector reads smbd's profile counters at scrape time.
type smbCollector func() (smb.Counters, bool)

func (c smbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- smbOpsDesc
	ch <- smbBytesDesc
}

func (c smbCollector) Collect(ch chan<- prometheus.Metric) {
	counters, ok := c()
	if !ok {
		return
	}
	ops, rd, wr := counters.SMB2()
	for op, n := range ops {
		ch <- prometheus.MustNewConstMetric(smbOpsDesc, prometheus.CounterValue, float64(n), op)
	}
	ch <- prometheus.MustNewConstMetric(smbBytesDesc, prometheus.CounterValue, float64(rd), "read")
	ch <- prometheus.MustNewConstMetric(smbBytesDesc, prometheus.CounterValue, float64(wr), "write")
}

// observeRPC is the rpc.Options.Observe hook.
func (m *metrics) observeRPC(ci rpc.CallInfo) {
	prog := "other"
	switch ci.Prog {
	case 100003:
		prog = "nfs"
	case 100005:
		prog = "mount"
	case 100000:
		prog = "portmap"
	}
	result := "success"
	if ci.Denied {
		result = "denied"
	} else if ci.Stat != rpc.Success {
		result = ci.Stat.String()
	}
	m.rpcCalls.WithLabelValues(prog, result).Inc()
}
