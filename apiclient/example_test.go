package apiclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/switchboard-voice/switchboard/apiclient"
)

// Reading the failed calls of the last hour with a supervisor's API key.
func Example() {
	ctx := context.Background()
	c, err := apiclient.NewClientWithResponses("https://switchboard.example.com",
		apiclient.WithRequestEditorFn(apiclient.BearerKey("sbk_…")))
	if err != nil {
		log.Fatal(err)
	}
	since, failed := time.Now().Add(-time.Hour), true
	res, err := c.ListCallsWithResponse(ctx, &apiclient.ListCallsParams{Since: &since, Failed: &failed})
	if err != nil {
		log.Fatal(err)
	}
	if res.JSON200 == nil {
		log.Fatalf("listing calls: %s", res.Status()) // JSON400, JSON401 … hold the error
	}
	for _, call := range res.JSON200.Calls {
		fmt.Println(call.ID, call.From, call.To, call.Status, call.FailureStage)
	}
}
