package workerapp

import (
	"context"
	"fmt"
	"sort"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"

	"github.com/connectflow/connectflow/workflows"
)

// OperatorClient is what RegisterSearchAttributes needs; a client.Client is one.
type OperatorClient interface {
	OperatorService() operatorservice.OperatorServiceClient
}

// RegisterSearchAttributes adds to namespace the Keyword search attributes in workflows.SearchAttributeNames that
// it lacks. One that exists with another type is an error. Where the server refuses (no permission, or no operator
// API as on some hosted setups) the error gives the temporal CLI command that creates them.
func RegisterSearchAttributes(ctx context.Context, c OperatorClient, namespace string) error {
	svc := c.OperatorService()
	list, err := svc.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return refused("list", namespace, workflows.SearchAttributeNames, err)
	}
	have := list.GetCustomAttributes()
	missing := map[string]enumspb.IndexedValueType{}
	var names, wrong []string
	for _, name := range workflows.SearchAttributeNames {
		typ, ok := have[name]
		switch {
		case !ok:
			missing[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
			names = append(names, name)
		case typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD:
			wrong = append(wrong, fmt.Sprintf("%s is %s", name, typ))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("search attributes in namespace %s must be Keyword: %s", namespace, strings.Join(wrong, ", "))
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = svc.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	if serviceerror.ToStatus(err).Code() == codes.AlreadyExists {
		return nil // another worker added them first
	}
	if err != nil {
		return refused("add", namespace, names, err)
	}
	return nil
}

// refused explains a failed operator call; when the server will not let us, it says how to do it by hand.
func refused(op, namespace string, names []string, err error) error {
	switch serviceerror.ToStatus(err).Code() {
	case codes.PermissionDenied, codes.Unimplemented:
		return fmt.Errorf("search attributes: %s not allowed in namespace %s (%w); create them with: %s",
			op, namespace, err, CreateSearchAttributesCommand(namespace, names))
	}
	return fmt.Errorf("search attributes: %s in namespace %s: %w", op, namespace, err)
}

// CreateSearchAttributesCommand is the temporal CLI command that creates names as Keyword attributes.
func CreateSearchAttributesCommand(namespace string, names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	var b strings.Builder
	b.WriteString("temporal operator search-attribute create --namespace ")
	b.WriteString(namespace)
	for _, name := range sorted {
		b.WriteString(" --name ")
		b.WriteString(name)
		b.WriteString(" --type Keyword")
	}
	return b.String()
}
