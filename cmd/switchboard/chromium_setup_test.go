package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
)

// TestChromiumAdminSetsUp: a tenant's admin, in the console's Setup view,
// creates a trunk with an outbound route, changes its numbers, puts a
// queue on one of them, makes a webhook (its secret shown once), then
// deletes the queue and the trunk. What the API holds follows each step,
// and the audit log has every change.
func TestChromiumAdminSetsUp(t *testing.T) {
	m := mustStartService(t, map[string]string{"keyring": testKeyring})
	f := mustProvision(t, m, "Setup", "2000", 1)
	admin := mustUser(t, m, f.Tenant.ID, "admin@setup.test", sb.RoleAdmin)
	key := roleKey(t, m, f.Tenant.ID, sb.RoleAdmin)
	// A first page's worth of queues (the API's default page is 50): the
	// one made below is on the second, which the page must read too.
	queues := metadata.NewQueueStore(m.DB)
	for i := range 50 {
		q := &sb.Queue{TenantID: f.Tenant.ID, Name: fmt.Sprintf("Q%02d", i), MaxWait: time.Minute, Overflow: sb.Overflow{Kind: sb.OverflowReject}}
		if err := queues.CreateQueue(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	run, poll := browserSteps(t, ctx)
	run("log in", chromedp.Navigate(m.HTTPURL()+"/console"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), admin.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`#login`)),
		chromedp.WaitVisible(chromedp.CSS(`#calls-view`)),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`[data-view="setup-view"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#setup-view`)))
	poll("the provisioned trunk is listed", `!!document.querySelector('#setup-trunks tr[data-trunk="Setup pbx"]')`)

	run("create a trunk", chromedp.SendKeys(chromedp.CSS(`#trunk-form [name=name]`), "Carrier"),
		chromedp.SendKeys(chromedp.CSS(`#trunk-form [name=numbers]`), "5000, 5001"),
		chromedp.SendKeys(chromedp.CSS(`#trunk-form [name=allow]`), "192.0.2.0/24"),
		chromedp.SendKeys(chromedp.CSS(`#trunk-form [name=target]`), "192.0.2.9:5060"),
		chromedp.SetValue(chromedp.CSS(`#trunk-form [name=media]`), "dtls"),
		chromedp.Click(chromedp.CSS(`#trunk-save`)))
	poll("the trunk is listed with its route", `(document.querySelector('#setup-trunks tr[data-trunk="Carrier"]') || {}).textContent?.includes("192.0.2.9:5060 (udp, DTLS-SRTP")`)
	run("edit its numbers", chromedp.Click(chromedp.CSS(`[aria-label="Edit Carrier"]`)),
		chromedp.SetValue(chromedp.CSS(`#trunk-form [name=numbers]`), "5001, 5002"),
		chromedp.Click(chromedp.CSS(`#trunk-save`)))
	poll("the numbers changed", `(document.querySelector('#setup-trunks tr[data-trunk="Carrier"]') || {}).textContent?.includes("5001, 5002")`)

	run("create a queue", chromedp.SendKeys(chromedp.CSS(`#queue-form [name=name]`), "Sales"),
		chromedp.SendKeys(chromedp.CSS(`#queue-form [name=numbers]`), "5002"),
		chromedp.SendKeys(chromedp.CSS(`#queue-form [name=members]`), f.Operators[0].Email),
		chromedp.Click(chromedp.CSS(`#queue-save`)))
	poll("the queue is listed with its member", `(document.querySelector('#setup-queues tr[data-queue="Sales"]') || {}).textContent?.includes("`+f.Operators[0].Email+`")`)
	poll("the number leads to it", `document.querySelector('#setup-numbers').textContent.includes("5002CarrierSales")`)

	run("make a webhook", chromedp.SendKeys(chromedp.CSS(`#webhook-form [name=url]`), "https://hooks.example/sb"),
		chromedp.Click(chromedp.CSS(`#webhook-save`)))
	poll("its secret is shown once", `document.querySelector('#webhook-secret').textContent.includes("whsec_")`)

	var trunks struct{ Trunks []sb.Trunk }
	apiCall(t, m, key, "GET", "/v1/trunks", nil, &trunks)
	i := slices.IndexFunc(trunks.Trunks, func(tr sb.Trunk) bool { return tr.Name == "Carrier" })
	if i < 0 || !slices.Equal(trunks.Trunks[i].Numbers, []string{"5001", "5002"}) {
		t.Fatalf("trunks through the API: %+v", trunks.Trunks)
	}
	var routes struct{ Routes []sb.Route }
	apiCall(t, m, key, "GET", "/v1/routes", nil, &routes)
	if j := slices.IndexFunc(routes.Routes, func(r sb.Route) bool { return r.TrunkName == "Carrier" }); j < 0 || routes.Routes[j].Media != sb.MediaDTLS {
		t.Errorf("the route after an edit of the trunk's numbers: %+v, want media dtls kept", routes.Routes)
	}

	run("delete the queue", chromedp.Click(chromedp.CSS(`[aria-label="Delete Sales"]`)))
	poll("the queue is gone", `!document.querySelector('#setup-queues tr[data-queue="Sales"]')`)
	run("delete the trunk", chromedp.Click(chromedp.CSS(`[aria-label="Delete Carrier"]`)))
	poll("the trunk is gone", `!document.querySelector('#setup-trunks tr[data-trunk="Carrier"]')`)
	if code, _ := apiCall(t, m, key, "GET", "/v1/trunks/"+trunks.Trunks[i].ID.String(), nil, nil); code != 404 {
		t.Errorf("the deleted trunk: %d, want 404", code)
	}

	run("open the audit log", chromedp.Click(chromedp.CSS(`[data-view="audit-view"]`)), chromedp.WaitVisible(chromedp.CSS(`#audit-view`)))
	for _, action := range []string{"trunk.create", "route.set", "trunk.update", "queue.create", "webhook.create", "queue.delete", "trunk.delete"} {
		poll("the audit log has "+action, `!!document.querySelector('#audit tr[data-action="`+action+`"]')`)
	}
}
