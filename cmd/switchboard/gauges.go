package main

import (
	"context"
	"sync/atomic"
	"time"
)

// The service's own gauges and counters, read from its parts at each
// scrape; the calls' are counted by metrics.Metrics as they go.

// watchSIP registers what the SIP side, the media ports and the HEP
// sender count.
func (m *Main) watchSIP() {
	m.Metrics.Gauge("switchboard_sip_banned_sources", "SIP sources banned now for flooding or failing authentication.",
		func() float64 { n, _ := m.SIP.ShieldStats(); return float64(n) })
	m.Metrics.Counter("switchboard_sip_refused_messages_total", "SIP messages and connections refused by the rate limit or a ban.",
		func() uint64 { _, n := m.SIP.ShieldStats(); return n })
	m.Metrics.States("switchboard_rtp_ports_in_use", "Media ports held now, by side: sip (one per SIP leg), webrtc (the one port "+
		"operators' and browser callers' PeerConnections share, or one each without it).", "side", func() map[string]int {
		return map[string]int{"sip": int(m.SIP.RTPPortsInUse()), "webrtc": int(m.Media.PortsInUse())}
	})
	m.Metrics.Gauge("switchboard_rtp_port_range_size", "Ports in SWITCHBOARD_RTP_PORTS (0: the system chooses).", func() float64 {
		if m.Config.RTPPorts.IsZero() {
			return 0
		}
		return float64(m.Config.RTPPorts.Max) - float64(m.Config.RTPPorts.Min) + 1
	})
	m.Metrics.Counter("switchboard_hep_dropped_messages_total", "SIP messages not sent to the HEP collector because its queue was full.",
		func() uint64 {
			if m.hep == nil {
				return 0
			}
			return m.hep.Dropped()
		})
	m.Metrics.Counters("switchboard_rtp_dropped_packets_total", "RTP packets the SIP side's calls dropped, by reason: foreign_source "+
		"(not from the call's peer), probation (from the caller's signalling address before it passed probation), unauthenticated (SRTP).",
		"reason", m.SIP.RTPDrops)
}

// storeCheck is how often the recording store is asked whether it
// answers, for /readyz and switchboard_recording_store_up.
const storeCheck = 5 * time.Second

// watchStore pings the recording store every storeCheck until the service
// closes, and returns what /readyz reports: the last ping's answer, so a
// store that hangs does not hold up the probe.
func (m *Main) watchStore(ctx context.Context, ping func(context.Context) error) func(context.Context) error {
	m.Metrics.WatchRecordingStore()
	var last atomic.Pointer[error]
	m.every(ctx, storeCheck, func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, storeCheck)
		err := ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		wasUp := last.Load() == nil || *last.Load() == nil
		switch {
		case err != nil && wasUp:
			m.Logger.Warn("the recording store does not answer: recordings wait in the spool", "err", err)
		case err == nil && !wasUp:
			m.Logger.Info("the recording store answers again")
		}
		last.Store(&err)
		m.Metrics.RecordingStoreUp(err == nil)
	}, nil)
	return func(context.Context) error {
		if err := last.Load(); err != nil {
			return *err
		}
		return nil
	}
}
