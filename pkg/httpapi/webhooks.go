package httpapi

import (
	"net/http"

	"github.com/keygate/keygate/pkg/keys"
	"github.com/keygate/keygate/pkg/webhooks"
)

// The webhooks operation's routes, one function for all: they share one
// store and one policy.
const (
	routeCreateWebhook     = "POST /v1/webhooks"
	routeListWebhooks      = "GET /v1/webhooks"
	routeGetWebhook        = "GET /v1/webhooks/{id}"
	routeUpdateWebhook     = "PATCH /v1/webhooks/{id}"
	routeDeleteWebhook     = "DELETE /v1/webhooks/{id}"
	routeWebhookDeliveries = "GET /v1/webhooks/{id}/deliveries"
	routeTestWebhook       = "POST /v1/webhooks/{id}/test"
)

var webhookRoutes = []string{routeCreateWebhook, routeListWebhooks, routeGetWebhook, routeUpdateWebhook, routeDeleteWebhook, routeWebhookDeliveries, routeTestWebhook}

func (a *API) webhooks(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(caller keys.Caller) (answer, error) {
		ctx, id := r.Context(), r.PathValue("id")
		switch r.Pattern {
		case routeCreateWebhook:
			var in webhooks.Input
			if err := DecodeBody(w, r, &in); err != nil {
				return answer{}, err
			}
			created, err := a.hooks.Create(ctx, caller, in)
			return data(http.StatusCreated, created), err
		case routeListWebhooks:
			if _, err := queryParams(r); err != nil {
				return answer{}, err
			}
			list, err := a.hooks.List(ctx, caller)
			if list == nil {
				list = []*webhooks.Webhook{}
			}
			return data(http.StatusOK, list), err
		case routeGetWebhook:
			hook, err := a.hooks.Get(ctx, caller, id)
			return data(http.StatusOK, hook), err
		case routeUpdateWebhook:
			var in webhooks.Input
			if err := DecodeBody(w, r, &in); err != nil {
				return answer{}, err
			}
			hook, err := a.hooks.Update(ctx, caller, id, in)
			return data(http.StatusOK, hook), err
		case routeDeleteWebhook:
			err := a.hooks.Delete(ctx, caller, id)
			return answer{http.StatusOK, Envelope{Success: true, Message: "webhook deleted"}}, err
		case routeWebhookDeliveries:
			_, limit, err := pageParams(r)
			if err != nil {
				return answer{}, err
			}
			p, err := a.hooks.Deliveries(ctx, caller, id, limit, r.URL.Query().Get("cursor"))
			if p.Items == nil {
				p.Items = []*webhooks.Delivery{}
			}
			return page(p), err
		case routeTestWebhook:
			eventID, err := a.hooks.Test(ctx, caller, id)
			return data(http.StatusAccepted, map[string]string{"eventId": eventID}), err
		}
		return answer{}, keys.ErrNotFound
	})
}
