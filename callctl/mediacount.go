package callctl

import sb "github.com/switchboard-voice/switchboard"

// countMedia hands the media counter what the call relayed since it last
// did: its finished bridges' media and the current bridge's, so totals
// move while the call goes on. Audio to nobody is not the call's, and a
// call handed over from another instance is counted there.
func (r *callRun) countMedia() {
	if r.s.countMedia == nil || r.hop != nil {
		return
	}
	from, to := r.c.FromCaller, r.c.ToCaller
	if r.bridge != nil && r.bridged != bridgedNobody {
		bf, bt := r.bridge.Stats()
		from.Packets, from.Lost = from.Packets+bf.Packets, from.Lost+bf.Lost
		to.Packets, to.Lost = to.Packets+bt.Packets, to.Lost+bt.Lost
	}
	r.s.countMedia(r.counted[0].next(from), r.counted[1].next(to))
}

// mediaCounted is what was counted of one direction so far.
type mediaCounted struct {
	packets uint64
	lost    int64
}

// next returns what st holds beyond what was counted, and counts it. Loss
// (expected minus received) falls when late packets arrive: a total only
// grows, by what passes the highest loss counted.
func (c *mediaCounted) next(st sb.MediaStats) sb.MediaCount {
	var n sb.MediaCount
	if st.Packets > c.packets {
		n.Packets, c.packets = st.Packets-c.packets, st.Packets
	}
	if st.Lost > c.lost {
		n.Lost, c.lost = uint64(st.Lost-c.lost), st.Lost
	}
	return n
}
