package samtemplate

// DynamoDB events: a function's event source mapping on the KeysTable's
// stream, read so that a local runner (internal/streams) batches, retries
// and filters as Lambda will. A property that would change what Lambda
// does, and that is not read here, is an error: the local runner would
// silently behave otherwise.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const streamEventType = "DynamoDB"

// StreamEvent is a function's DynamoDB event. A property the template leaves
// out holds Lambda's default.
type StreamEvent struct {
	// Name is the event's key under the function's Events.
	Name string
	// StartingPosition is TRIM_HORIZON or LATEST.
	StartingPosition string
	// BatchSize is the most records an invocation gets (default 100).
	BatchSize int
	// MaximumBatchingWindow is how long records are gathered before an
	// invocation that is not full (default 0).
	MaximumBatchingWindow time.Duration
	// MaximumRetryAttempts is how often a failing batch is retried; -1
	// (the default) retries until its records expire.
	MaximumRetryAttempts int
	// BisectBatchOnFunctionError splits a failing batch in two.
	BisectBatchOnFunctionError bool
	// OnFailure is the logical id of the resource a batch that failed its
	// last retry is sent to (DestinationConfig.OnFailure.Destination: !GetAtt
	// <id>.Arn); "" for none. OnFailureType is SAM's Type of it (SQS, SNS),
	// without which SAM grants the function no right to send there.
	OnFailure     string
	OnFailureType string
	// Filters are the FilterCriteria patterns, JSON in Lambda's filter rule
	// syntax: a record that matches none of them invokes nothing.
	Filters []string
}

// Lambda's defaults for a DynamoDB event source mapping.
const (
	defaultBatchSize     = 100
	defaultMaxRetries    = -1
	streamArnOfKeysTable = TableResource + ".StreamArn"
)

// knownStreamProperties are the properties parseStreamEvent reads, and
// MaximumRecordAgeInSeconds, which it leaves out: Lambda discards records
// hours old, and a local run reads records seconds old (or, restarted, the
// whole stream again).
var knownStreamProperties = []string{
	"Stream", "StartingPosition", "BatchSize", "MaximumBatchingWindowInSeconds",
	"MaximumRetryAttempts", "BisectBatchOnFunctionError", "DestinationConfig", "FilterCriteria",
	"MaximumRecordAgeInSeconds",
}

type streamEventProps struct {
	Stream                         yaml.Node `yaml:"Stream"`
	StartingPosition               yaml.Node `yaml:"StartingPosition"`
	BatchSize                      yaml.Node `yaml:"BatchSize"`
	MaximumBatchingWindowInSeconds yaml.Node `yaml:"MaximumBatchingWindowInSeconds"`
	MaximumRetryAttempts           yaml.Node `yaml:"MaximumRetryAttempts"`
	BisectBatchOnFunctionError     yaml.Node `yaml:"BisectBatchOnFunctionError"`
	DestinationConfig              struct {
		OnFailure struct {
			Type        yaml.Node `yaml:"Type"`
			Destination yaml.Node `yaml:"Destination"`
		} `yaml:"OnFailure"`
	} `yaml:"DestinationConfig"`
	FilterCriteria struct {
		Filters []struct {
			Pattern yaml.Node `yaml:"Pattern"`
		} `yaml:"Filters"`
	} `yaml:"FilterCriteria"`
}

func parseStreamEvent(name string, node yaml.Node) (StreamEvent, error) {
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k := node.Content[i].Value; !slices.Contains(knownStreamProperties, k) {
			return StreamEvent{}, fmt.Errorf("property %s is not read, so a local run would not do what Lambda does; read it in internal/samtemplate", k)
		}
	}
	var p streamEventProps
	if err := node.Decode(&p); err != nil {
		return StreamEvent{}, err
	}
	if p.Stream.Tag != "!GetAtt" || p.Stream.Value != streamArnOfKeysTable {
		return StreamEvent{}, fmt.Errorf("Stream: want !GetAtt %s, the one table's stream", streamArnOfKeysTable)
	}
	ev := StreamEvent{Name: name, BatchSize: defaultBatchSize, MaximumRetryAttempts: defaultMaxRetries}
	var ok bool
	if ev.StartingPosition, ok = literal(p.StartingPosition); !ok || ev.StartingPosition != "TRIM_HORIZON" && ev.StartingPosition != "LATEST" {
		return StreamEvent{}, fmt.Errorf("StartingPosition: want TRIM_HORIZON or LATEST")
	}
	var window int
	for _, f := range []struct {
		name string
		node *yaml.Node
		into *int
	}{
		{"BatchSize", &p.BatchSize, &ev.BatchSize},
		{"MaximumBatchingWindowInSeconds", &p.MaximumBatchingWindowInSeconds, &window},
		{"MaximumRetryAttempts", &p.MaximumRetryAttempts, &ev.MaximumRetryAttempts},
	} {
		if f.node.IsZero() {
			continue
		}
		v, ok := literal(*f.node)
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return StreamEvent{}, fmt.Errorf("%s: want a literal integer", f.name)
		}
		*f.into = n
	}
	ev.MaximumBatchingWindow = time.Duration(window) * time.Second
	if !p.BisectBatchOnFunctionError.IsZero() {
		v, ok := literal(p.BisectBatchOnFunctionError)
		b, err := strconv.ParseBool(v)
		if !ok || err != nil {
			return StreamEvent{}, fmt.Errorf("BisectBatchOnFunctionError: want a literal true or false")
		}
		ev.BisectBatchOnFunctionError = b
	}
	if onFailure := p.DestinationConfig.OnFailure; !onFailure.Destination.IsZero() {
		id, isAttr := strings.CutSuffix(onFailure.Destination.Value, ".Arn")
		if onFailure.Destination.Tag != "!GetAtt" || !isAttr {
			return StreamEvent{}, fmt.Errorf("DestinationConfig.OnFailure.Destination: want !GetAtt <resource>.Arn")
		}
		ev.OnFailure = id
		ev.OnFailureType, _ = literal(onFailure.Type)
	}
	for i, f := range p.FilterCriteria.Filters {
		pattern, ok := literal(f.Pattern)
		if !ok {
			return StreamEvent{}, fmt.Errorf("FilterCriteria.Filters[%d].Pattern: want a literal string", i)
		}
		ev.Filters = append(ev.Filters, pattern)
	}
	return ev, nil
}
