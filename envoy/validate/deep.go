package validate

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

type validator interface{ ValidateAll() error }

// anyName is the full name of google.protobuf.Any.
const anyName protoreflect.FullName = "google.protobuf.Any"

// untyped are the Any payloads Envoy converts into a typed config by name
// at load time; their contents cannot be checked here, so they are refused
// rather than let through unchecked.
var untyped = map[protoreflect.FullName]bool{
	"xds.type.v3.TypedStruct":  true,
	"udpa.type.v1.TypedStruct": true,
}

// Deep runs ValidateAll on m and on every message packed in an Any
// anywhere inside m, recursively. The generated ValidateAll of a message
// descends into its embedded messages but treats an Any as opaque (at most
// its type URL is checked), which is where Envoy keeps every filter and
// extension config; Envoy itself validates each one when it instantiates
// the extension (Config::Utility::translateOpaqueConfig →
// MessageUtil::validate in source/common/config/utility.h).
//
// An Any whose type this binary does not link, that does not decode, or
// whose message has no generated validation (other than the well-known
// google.protobuf types) is an error, never a skip.
func Deep(m proto.Message) error {
	var errs []error
	walker{
		visit:     deepVisitor(&errs),
		unpackErr: func(p *path, err error) { errs = append(errs, at(p, err)) },
	}.walk(nil, m, true)
	return errors.Join(errs...)
}

// deepVisitor runs ValidateAll on the root and on every Any payload.
func deepVisitor(errs *[]error) func(*path, proto.Message, bool) {
	return func(p *path, m proto.Message, payload bool) {
		if !payload {
			return
		}
		if v, ok := m.(validator); ok {
			if err := v.ValidateAll(); err != nil {
				*errs = append(*errs, at(p, err))
			}
		} else if !wellKnown(m.ProtoReflect().Descriptor()) {
			*errs = append(*errs, at(p, fmt.Errorf("%s has no validation rules", m.ProtoReflect().Descriptor().FullName())))
		}
	}
}

// Unpack decodes an Any with the types this binary links. Unknown types,
// undecodable payloads and untyped (TypedStruct) configs are errors.
func Unpack(a *anypb.Any) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(a.GetTypeUrl())
	if err != nil {
		return nil, fmt.Errorf("type %q is not known to this control plane: %w", a.GetTypeUrl(), err)
	}
	if untyped[mt.Descriptor().FullName()] {
		return nil, fmt.Errorf("type %q: untyped configs cannot be validated", a.GetTypeUrl())
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(a.GetValue(), m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", a.GetTypeUrl(), err)
	}
	return m, nil
}

// wellKnown are google.protobuf messages: generated without validation
// rules, and none of them carry rules Envoy would apply.
func wellKnown(d protoreflect.MessageDescriptor) bool {
	return d.ParentFile().Package() == "google.protobuf"
}

func at(p *path, err error) error {
	if p == nil || len(p.segs) == 0 {
		return err
	}
	return fmt.Errorf("%s: %w", p, err)
}
