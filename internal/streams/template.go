package streams

import (
	"fmt"
	"time"

	"github.com/keygate/keygate/internal/samtemplate"
)

// lambdaPollInterval is how often Lambda reads each shard of a DynamoDB
// stream: "at a base rate of 4 times per second".
const lambdaPollInterval = 250 * time.Millisecond

// OptionsFromTemplate reads the event source mapping of the named function
// (its folder's name, as samtemplate.Function.Name) from its one DynamoDB
// event in template.yaml, with the function's timeout. OnFailure is left
// for the caller: the template's destination is a queue in AWS.
func OptionsFromTemplate(tpl *samtemplate.Template, function string) (Options, error) {
	f, ok := tpl.Function(function)
	if !ok {
		return Options{}, fmt.Errorf("streams: template.yaml has no function %s", function)
	}
	if len(f.StreamEvents) != 1 {
		return Options{}, fmt.Errorf("streams: function %s has %d DynamoDB events, want 1", function, len(f.StreamEvents))
	}
	ev := f.StreamEvents[0]
	// Run keeps no checkpoint, so it has no "from now on" to start at.
	if ev.StartingPosition != "TRIM_HORIZON" {
		return Options{}, fmt.Errorf("streams: function %s: StartingPosition %s; Run reads from TRIM_HORIZON only", function, ev.StartingPosition)
	}
	return Options{
		BatchSize:      ev.BatchSize,
		BatchingWindow: ev.MaximumBatchingWindow,
		MaxRetries:     ev.MaximumRetryAttempts,
		Bisect:         ev.BisectBatchOnFunctionError,
		Filters:        ev.Filters,
		Timeout:        f.Timeout,
		PollInterval:   lambdaPollInterval,
	}, nil
}
