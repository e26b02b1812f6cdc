package api

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The console's timeline has a sentence for every kind of event the
// service writes: each EventType constant of the root package has its
// case in timeline.js (a kind added without one would read as its bare
// name).
func TestTimelineHasASentenceForEveryEvent(t *testing.T) {
	src, err := os.ReadFile("../call.go")
	if err != nil {
		t.Fatal(err)
	}
	js, err := webFS.ReadFile("web/timeline.js")
	if err != nil {
		t.Fatal(err)
	}
	kinds := regexp.MustCompile(`(?m)^\s*(?:const\s+)?Event\w+\s+EventType\s*=\s*"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(kinds) < 35 {
		t.Fatalf("found %d event kinds in call.go; the pattern no longer matches its constants", len(kinds))
	}
	for _, k := range kinds {
		if !strings.Contains(string(js), `case "`+k[1]+`":`) {
			t.Errorf("timeline.js has no sentence for %q", k[1])
		}
	}
}
