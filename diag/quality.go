package diag

import (
	"math"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// Quality is one direction of a call, as the E-model needs it.
type Quality struct {
	Loss     float64 // packet loss, 0 to 1
	JitterMS float64 // interarrival jitter (RFC 3550)
	DelayMS  float64 // one-way network delay; 0: unknown, DefaultDelayMS is assumed
	Codec    string  // PCMU, PCMA or opus
}

// DefaultDelayMS is the one-way network delay assumed when none is known:
// a call across one country.
const DefaultDelayMS = 40

// MOS estimates a direction's listening quality with the ITU-T G.107
// E-model, simplified as VoIP monitors do: R = 93.2 − Id − Ie,eff, the
// defaults for everything but delay and loss, and MOS from R by G.107's
// conversion.
//
//   - The delay the listener feels, Ta, is the network's plus a jitter
//     buffer (twice the jitter) plus the codec's frame (20 ms).
//   - Id, the delay impairment, is 0.024·Ta, plus 0.11·(Ta − 177.3) past
//     177.3 ms (G.107's simplified form, as in Cole and Rosenbluth).
//   - Ie,eff = Ie + (95 − Ie)·Ppl / (Ppl + Bpl), random loss (BurstR 1).
//     G.711 with packet loss concealment: Ie 0, Bpl 25.1 (G.113 Appendix
//     I). Opus: Ie 0, Bpl 20, from G.113's wideband figures as a stand-in.
func MOS(q Quality) (r, mos float64) {
	delay := q.DelayMS
	if delay <= 0 {
		delay = DefaultDelayMS
	}
	ta := delay + 2*q.JitterMS + 20
	id := 0.024 * ta
	if ta > 177.3 {
		id += 0.11 * (ta - 177.3)
	}
	ie, bpl := 0.0, 25.1
	if q.Codec == "opus" {
		bpl = 20
	}
	ppl := 100 * math.Min(math.Max(q.Loss, 0), 1)
	ieEff := ie + (95-ie)*ppl/(ppl+bpl)
	r = math.Min(math.Max(93.2-id-ieEff, 0), 100)
	return r, RtoMOS(r)
}

// RtoMOS is G.107's conversion from the rating R to a MOS.
func RtoMOS(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}

// Thresholds for the quality tags. Jitter and loss follow the figures
// Twilio's Voice Insights tags calls with (jitter over 30 ms, loss over
// 3%); a MOS under 3.5 is where G.107 puts "many users dissatisfied".
const (
	HighJitterMS = 30
	HighLoss     = 0.03
	LowMOS       = 3.5
	// OneWayAfter is how long an answered call runs before one silent
	// direction counts as one-way audio rather than a slow start.
	OneWayAfterMS = 5000
	// minHeard is the share of the other direction's packets below which a
	// direction counts as missing.
	minHeard = 0.05
)

// Direction is what the tags look at in one direction of a call.
type Direction struct {
	Packets  uint64
	Lost     int64
	JitterMS float64
	MOS      float64
	Silent   bool // audio arrived but all of it was silence
}

// Tags names a call's quality problems: high-jitter, high-loss, low-mos,
// one-way-audio, silence. answeredMS is how long the call was up.
func Tags(from, to Direction, answeredMS int64) []string {
	var tags []string
	add := func(tag string) {
		for _, t := range tags {
			if t == tag {
				return
			}
		}
		tags = append(tags, tag)
	}
	for _, d := range []Direction{from, to} {
		if d.JitterMS > HighJitterMS {
			add(sb.TagHighJitter)
		}
		if expected := float64(d.Packets) + float64(max(d.Lost, 0)); expected > 0 && float64(max(d.Lost, 0))/expected > HighLoss {
			add(sb.TagHighLoss)
		}
		if d.MOS > 0 && d.MOS < LowMOS {
			add(sb.TagLowMOS)
		}
		if d.Silent && d.Packets > 0 {
			add(sb.TagSilence)
		}
	}
	if answeredMS >= OneWayAfterMS {
		most := max(from.Packets, to.Packets)
		if most > 0 && float64(min(from.Packets, to.Packets)) < minHeard*float64(most) {
			add(sb.TagOneWayAudio)
		}
	}
	return tags
}

// Silent reports whether a G.711 frame is silence.
func Silent(payload []byte, codec string) bool { return media.Silent(payload, codec == "PCMA") }

// Score is call control's QualityScorer: each direction's MOS from its
// statistics (the round-trip time the browser reported, halved, as the
// delay where known) and the call's tags.
func Score(c *sb.Call, samples []sb.QualitySample) (fromCallerMOS, toCallerMOS float64, tags []string) {
	delay := 0.0
	for _, s := range samples {
		if s.RTTMS > 0 {
			delay = s.RTTMS / 2
		}
	}
	q := func(st sb.MediaStats) float64 {
		expected := float64(st.Packets) + float64(max(st.Lost, 0))
		if expected == 0 {
			return 0
		}
		_, mos := MOS(Quality{Loss: float64(max(st.Lost, 0)) / expected, JitterMS: st.JitterMS, DelayMS: delay, Codec: c.Codec})
		return math.Round(mos*100) / 100
	}
	fromCallerMOS, toCallerMOS = q(c.FromCaller), q(c.ToCaller)
	tags = Tags(Direction{Packets: c.FromCaller.Packets, Lost: c.FromCaller.Lost, JitterMS: c.FromCaller.JitterMS, MOS: fromCallerMOS, Silent: c.FromCaller.Silent},
		Direction{Packets: c.ToCaller.Packets, Lost: c.ToCaller.Lost, JitterMS: c.ToCaller.JitterMS, MOS: toCallerMOS, Silent: c.ToCaller.Silent}, c.DurationMS)
	return fromCallerMOS, toCallerMOS, tags
}
