package diag

import (
	"math"
	"slices"
	"testing"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// The E-model's figures, worked by hand from the formulas in MOS's comment.
func TestMOS(t *testing.T) {
	cases := []struct {
		name   string
		q      Quality
		r, mos float64
	}{
		// Ta = 40 + 0 + 20 = 60; Id = 1.44; R = 91.76;
		// MOS = 1 + 3.2116 + 91.76·31.76·8.24·7e-6 = 4.3797.
		{"clean G.711", Quality{Codec: "PCMU"}, 91.76, 4.3797},
		// Ie,eff = 95·5/(5+25.1) = 15.7807; R = 75.9793; MOS = 3.8634.
		{"5% random loss", Quality{Loss: 0.05, Codec: "PCMA"}, 75.9793, 3.8634},
		// Ta = 320; Id = 7.68 + 0.11·142.7 = 23.377; R = 69.823; MOS = 3.5887.
		{"300 ms one way", Quality{DelayMS: 300, Codec: "PCMU"}, 69.823, 3.5887},
	}
	for _, c := range cases {
		r, mos := MOS(c.q)
		if math.Abs(r-c.r) > 0.01 || math.Abs(mos-c.mos) > 0.001 {
			t.Errorf("%s: R %.4f MOS %.4f, want R %.4f MOS %.4f", c.name, r, mos, c.r, c.mos)
		}
	}
	// Worse never sounds better.
	prev := 5.0
	for loss := 0.0; loss <= 0.3; loss += 0.01 {
		_, mos := MOS(Quality{Loss: loss, JitterMS: 10})
		if mos > prev {
			t.Fatalf("MOS rose to %.3f at %.0f%% loss", mos, loss*100)
		}
		prev = mos
	}
	prev = 5
	for d := 0.0; d <= 600; d += 25 {
		_, mos := MOS(Quality{DelayMS: d + 1})
		if mos > prev {
			t.Fatalf("MOS rose to %.3f at %.0f ms", mos, d)
		}
		prev = mos
	}
	if RtoMOS(-5) != 1 || RtoMOS(120) != 4.5 {
		t.Error("MOS out of its 1 to 4.5 range")
	}
}

func TestTags(t *testing.T) {
	good := Direction{Packets: 500, JitterMS: 3, MOS: 4.3}
	cases := []struct {
		name     string
		from, to Direction
		answered int64
		want     []string
	}{
		{"good call", good, good, 10000, nil},
		{"jitter", Direction{Packets: 500, JitterMS: 45, MOS: 4.1}, good, 10000, []string{sb.TagHighJitter}},
		{"loss and low MOS", Direction{Packets: 450, Lost: 50, MOS: 3.2}, good, 10000, []string{sb.TagHighLoss, sb.TagLowMOS}},
		{"one-way audio", good, Direction{Packets: 3}, 10000, []string{sb.TagOneWayAudio}},
		{"too short to tell", good, Direction{Packets: 0}, 2000, nil},
		{"silence", Direction{Packets: 500, MOS: 4.3, Silent: true}, good, 10000, []string{sb.TagSilence}},
	}
	for _, c := range cases {
		if got := Tags(c.from, c.to, c.answered); !slices.Equal(got, c.want) {
			t.Errorf("%s: tags %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSilent(t *testing.T) {
	quiet, loud := make([]byte, 160), make([]byte, 160)
	for i := range quiet {
		quiet[i] = media.LinearToUlaw(int16(i%7 - 3)) // line noise
		loud[i] = media.LinearToUlaw(int16(2000 * (i%2*2 - 1)))
	}
	if !Silent(quiet, "PCMU") || Silent(loud, "PCMU") {
		t.Error("μ-law silence misjudged")
	}
	if !Silent([]byte{0xd5, 0xd5, 0x55}, "PCMA") || Silent([]byte{0xd5, 0xaa}, "PCMA") {
		t.Error("A-law silence misjudged")
	}
}

// Score turns a call's record into MOS per direction and tags.
func TestScore(t *testing.T) {
	c := &sb.Call{Codec: "PCMU", DurationMS: 30000,
		FromCaller: sb.MediaStats{Packets: 1500, JitterMS: 2}, ToCaller: sb.MediaStats{Packets: 10}}
	from, to, tags := Score(c, []sb.QualitySample{{RTTMS: 40}})
	if from < 4.3 || from > 4.45 || to < 4.3 || !slices.Equal(tags, []string{sb.TagOneWayAudio}) {
		t.Errorf("Score: %.2f %.2f %v", from, to, tags)
	}
}
