package samtemplate

// The table: keygate's DynamoDB table definition (resource KeysTable), and
// creating tables from it, so DynamoDB Local in tests and tools always has
// the production schema: the table is defined once, in the template.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"
)

// TableResource is the logical id of the table in template.yaml.
const TableResource = "KeysTable"

// Table is the part of the table's CloudFormation definition that
// shapes data: keys, indexes, billing, time to live and the stream.
// Settings such as encryption, backups and deletion protection are left to
// CloudFormation.
type Table struct {
	AttributeDefinitions   []types.AttributeDefinition
	KeySchema              []types.KeySchemaElement
	GlobalSecondaryIndexes []types.GlobalSecondaryIndex
	BillingMode            types.BillingMode
	// TTLAttribute is the attribute DynamoDB's time to live expires items
	// by; empty when the template does not enable time to live.
	TTLAttribute string
	// StreamViewType is what the table's stream records of each change
	// (NEW_AND_OLD_IMAGES, ...); empty when the template enables no stream.
	StreamViewType types.StreamViewType
}

// The YAML shapes of the fields read. Each is first held as a yaml.Node so
// intrinsic functions can be rejected (see literal) before decoding.
type (
	tableDoc struct {
		Resources map[string]struct {
			Type       string    `yaml:"Type"`
			Properties yaml.Node `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	tableProps struct {
		AttributeDefinitions    yaml.Node `yaml:"AttributeDefinitions"`
		KeySchema               yaml.Node `yaml:"KeySchema"`
		GlobalSecondaryIndexes  yaml.Node `yaml:"GlobalSecondaryIndexes"`
		BillingMode             yaml.Node `yaml:"BillingMode"`
		TimeToLiveSpecification yaml.Node `yaml:"TimeToLiveSpecification"`
		StreamSpecification     yaml.Node `yaml:"StreamSpecification"`
	}
	attrDef struct {
		AttributeName string `yaml:"AttributeName"`
		AttributeType string `yaml:"AttributeType"`
	}
	keyElem struct {
		AttributeName string `yaml:"AttributeName"`
		KeyType       string `yaml:"KeyType"`
	}
	gsiDef struct {
		IndexName  string    `yaml:"IndexName"`
		KeySchema  []keyElem `yaml:"KeySchema"`
		Projection struct {
			ProjectionType   string   `yaml:"ProjectionType"`
			NonKeyAttributes []string `yaml:"NonKeyAttributes"`
		} `yaml:"Projection"`
	}
	ttlSpec struct {
		AttributeName string `yaml:"AttributeName"`
		Enabled       bool   `yaml:"Enabled"`
	}
	streamSpec struct {
		StreamViewType string `yaml:"StreamViewType"`
	}
)

// parseTable reads the KeysTable resource; nil when the template has none.
func parseTable(data []byte) (*Table, error) {
	// yaml.v3 accepts CloudFormation's short-form tags (!Ref, !Sub, ...)
	// elsewhere in the template; only the fields read here must be literal.
	var doc tableDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	res, ok := doc.Resources[TableResource]
	if !ok {
		return nil, nil
	}
	if res.Type != "AWS::DynamoDB::Table" {
		return nil, fmt.Errorf("%s is a %s, not an AWS::DynamoDB::Table", TableResource, res.Type)
	}
	var props tableProps
	if err := res.Properties.Decode(&props); err != nil {
		return nil, fmt.Errorf("%s.Properties: %w", TableResource, err)
	}

	var (
		attrs   []attrDef
		keys    []keyElem
		gsis    []gsiDef
		billing string
		ttl     ttlSpec
		stream  streamSpec
	)
	for _, f := range []struct {
		name string
		node *yaml.Node
		into any
	}{
		{"AttributeDefinitions", &props.AttributeDefinitions, &attrs},
		{"KeySchema", &props.KeySchema, &keys},
		{"GlobalSecondaryIndexes", &props.GlobalSecondaryIndexes, &gsis},
		{"BillingMode", &props.BillingMode, &billing},
		{"TimeToLiveSpecification", &props.TimeToLiveSpecification, &ttl},
		{"StreamSpecification", &props.StreamSpecification, &stream},
	} {
		if f.node.Kind == 0 { // absent
			continue
		}
		if err := requireLiteral(f.node); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", TableResource, f.name, err)
		}
		if err := f.node.Decode(f.into); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", TableResource, f.name, err)
		}
	}

	def := &Table{BillingMode: types.BillingMode(billing), StreamViewType: types.StreamViewType(stream.StreamViewType)}
	if ttl.Enabled {
		def.TTLAttribute = ttl.AttributeName
	}
	for _, a := range attrs {
		def.AttributeDefinitions = append(def.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	def.KeySchema = keySchema(keys)
	for _, g := range gsis {
		gsi := types.GlobalSecondaryIndex{
			IndexName: aws.String(g.IndexName),
			KeySchema: keySchema(g.KeySchema),
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionType(g.Projection.ProjectionType),
				NonKeyAttributes: g.Projection.NonKeyAttributes,
			},
		}
		def.GlobalSecondaryIndexes = append(def.GlobalSecondaryIndexes, gsi)
	}
	return def, def.validate()
}

func keySchema(keys []keyElem) []types.KeySchemaElement {
	var out []types.KeySchemaElement
	for _, k := range keys {
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(k.AttributeName),
			KeyType:       types.KeyType(k.KeyType),
		})
	}
	return out
}

// requireLiteral rejects CloudFormation intrinsic functions (short-form tags such as
// !Ref, or long-form keys such as Ref and Fn::If), whose values only
// CloudFormation can work out: decoded naively, `BillingMode: !Ref Mode`
// would silently read as "Mode".
func requireLiteral(n *yaml.Node) error {
	if intrinsic(n) {
		return fmt.Errorf("line %d: intrinsic function %s is not supported here; use a literal value", n.Line, n.Tag)
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k == "Ref" || strings.HasPrefix(k, "Fn::") {
				return fmt.Errorf("line %d: intrinsic function %s is not supported here; use a literal value", n.Content[i].Line, k)
			}
		}
	}
	for _, c := range n.Content {
		if err := requireLiteral(c); err != nil {
			return err
		}
	}
	return nil
}

func (d *Table) validate() error {
	if len(d.KeySchema) == 0 {
		return fmt.Errorf("%s has no KeySchema", TableResource)
	}
	// Without PAY_PER_REQUEST, CreateTable would also need provisioned
	// throughput, which this package does not read.
	if d.BillingMode != types.BillingModePayPerRequest {
		return fmt.Errorf("%s: BillingMode %q is not supported; want PAY_PER_REQUEST", TableResource, d.BillingMode)
	}
	defined := map[string]bool{}
	for _, a := range d.AttributeDefinitions {
		defined[aws.ToString(a.AttributeName)] = true
	}
	check := func(where string, keys []types.KeySchemaElement) error {
		for _, k := range keys {
			if !defined[aws.ToString(k.AttributeName)] {
				return fmt.Errorf("%s: key attribute %q is not in AttributeDefinitions", where, aws.ToString(k.AttributeName))
			}
		}
		return nil
	}
	if d.StreamViewType != "" && !slices.Contains(d.StreamViewType.Values(), d.StreamViewType) {
		return fmt.Errorf("%s.StreamSpecification: StreamViewType %q is not one of %v", TableResource, d.StreamViewType, d.StreamViewType.Values())
	}
	if err := check(TableResource+".KeySchema", d.KeySchema); err != nil {
		return err
	}
	for _, g := range d.GlobalSecondaryIndexes {
		if err := check("index "+aws.ToString(g.IndexName), g.KeySchema); err != nil {
			return err
		}
	}
	return nil
}

// CreateTableInput returns the CreateTable request for a table named
// tableName with this definition. Each call returns fresh values, so the
// caller may modify the result.
func (d *Table) CreateTableInput(tableName string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(tableName),
		BillingMode: d.BillingMode,
	}
	if d.StreamViewType != "" {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: d.StreamViewType}
	}
	for _, a := range d.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(aws.ToString(a.AttributeName)),
			AttributeType: a.AttributeType,
		})
	}
	in.KeySchema = copyKeys(d.KeySchema)
	for _, g := range d.GlobalSecondaryIndexes {
		gsi := types.GlobalSecondaryIndex{
			IndexName: aws.String(aws.ToString(g.IndexName)),
			KeySchema: copyKeys(g.KeySchema),
		}
		if g.Projection != nil {
			gsi.Projection = &types.Projection{
				ProjectionType:   g.Projection.ProjectionType,
				NonKeyAttributes: append([]string(nil), g.Projection.NonKeyAttributes...),
			}
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	return in
}

func copyKeys(keys []types.KeySchemaElement) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.KeySchemaElement{AttributeName: aws.String(aws.ToString(k.AttributeName)), KeyType: k.KeyType})
	}
	return out
}

// CreateOptions tunes Create.
type CreateOptions struct {
	// TTL enables time to live on the definition's TTLAttribute, as in
	// production. Tests leave it off to prove that expired items are
	// filtered in code, since DynamoDB deletes expired items only eventually.
	TTL bool
}

// Create creates the table, waits until it is ACTIVE and, with opts.TTL,
// enables time to live.
func Create(ctx context.Context, client *dynamodb.Client, def *Table, tableName string, opts CreateOptions) error {
	if opts.TTL && def.TTLAttribute == "" {
		return fmt.Errorf("samtemplate: TTL requested for %s, but the template enables no time to live", tableName)
	}
	if _, err := client.CreateTable(ctx, def.CreateTableInput(tableName)); err != nil {
		return fmt.Errorf("samtemplate: creating table %s: %w", tableName, err)
	}
	if err := waitActive(ctx, client, tableName); err != nil {
		return err
	}
	if opts.TTL {
		return enableTTL(ctx, client, def, tableName)
	}
	return nil
}

// EnsureExists creates the table as Create with time to live enabled when
// the template enables it, unless a table of that name exists already. Of
// an existing table it compares only the stream and the indexes' names
// (a table made before the template had them): a stream the definition
// has and the table lacks is enabled, another view type is an error; a
// missing index is added, holding the items that have its keys.
func EnsureExists(ctx context.Context, client *dynamodb.Client, def *Table, tableName string) error {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName)})
	var notFound *types.ResourceNotFoundException
	switch {
	case err == nil:
		if err := waitActive(ctx, client, tableName); err != nil {
			return err
		}
		if err := ensureStream(ctx, client, def, tableName, out.Table.StreamSpecification); err != nil {
			return err
		}
		return ensureIndexes(ctx, client, def, tableName, out.Table.GlobalSecondaryIndexes)
	case !errors.As(err, &notFound):
		return fmt.Errorf("samtemplate: describing table %s: %w", tableName, err)
	}
	err = Create(ctx, client, def, tableName, CreateOptions{TTL: def.TTLAttribute != ""})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		// Someone else created it between DescribeTable and CreateTable.
		return waitActive(ctx, client, tableName)
	}
	return err
}

// ensureStream enables the definition's stream on a table that has none.
func ensureStream(ctx context.Context, client *dynamodb.Client, def *Table, tableName string, has *types.StreamSpecification) error {
	enabled := has != nil && aws.ToBool(has.StreamEnabled)
	switch {
	case def.StreamViewType == "":
		return nil
	case enabled && has.StreamViewType != def.StreamViewType:
		return fmt.Errorf("samtemplate: table %s has a %s stream, the template %s; delete the table to make it anew", tableName, has.StreamViewType, def.StreamViewType)
	case enabled:
		return nil
	}
	_, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:           aws.String(tableName),
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: def.StreamViewType},
	})
	if err != nil {
		return fmt.Errorf("samtemplate: enabling the stream of %s: %w", tableName, err)
	}
	return waitActive(ctx, client, tableName)
}

// ensureIndexes adds the definition's indexes a table lacks, one at a
// time, as DynamoDB requires, and waits until each is ACTIVE.
func ensureIndexes(ctx context.Context, client *dynamodb.Client, def *Table, tableName string, has []types.GlobalSecondaryIndexDescription) error {
	in := def.CreateTableInput(tableName)
	for _, g := range in.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		if slices.ContainsFunc(has, func(d types.GlobalSecondaryIndexDescription) bool { return aws.ToString(d.IndexName) == name }) {
			continue
		}
		_, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            aws.String(tableName),
			AttributeDefinitions: in.AttributeDefinitions,
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
				IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection,
			}}},
		})
		if err != nil {
			return fmt.Errorf("samtemplate: adding index %s to %s: %w", name, tableName, err)
		}
		if err := waitIndexActive(ctx, client, tableName, name); err != nil {
			return err
		}
	}
	return nil
}

// waitIndexActive waits until the table's index name is ACTIVE: built from
// the items the table holds.
func waitIndexActive(ctx context.Context, client *dynamodb.Client, tableName, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // as waitActive
	defer cancel()
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName)})
		if err != nil {
			return fmt.Errorf("samtemplate: waiting for index %s of %s: %w", name, tableName, err)
		}
		i := slices.IndexFunc(out.Table.GlobalSecondaryIndexes, func(d types.GlobalSecondaryIndexDescription) bool { return aws.ToString(d.IndexName) == name })
		if i >= 0 && out.Table.GlobalSecondaryIndexes[i].IndexStatus == types.IndexStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("samtemplate: waiting for index %s of %s: %w", name, tableName, ctx.Err())
		case <-time.After(delay):
		}
	}
}

func waitActive(ctx context.Context, client *dynamodb.Client, tableName string) error {
	// The waiter's default 20 s minimum delay suits AWS, not DynamoDB Local,
	// where tables are ACTIVE at once.
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName)}, 5*time.Minute); err != nil {
		return fmt.Errorf("samtemplate: waiting for table %s: %w", tableName, err)
	}
	return nil
}

func enableTTL(ctx context.Context, client *dynamodb.Client, def *Table, tableName string) error {
	_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(tableName),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(def.TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("samtemplate: enabling time to live on %s: %w", tableName, err)
	}
	return nil
}
