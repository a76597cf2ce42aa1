//! A compact index of the public (API) schema: what projection, variable coercion and
//! introspection need to know about types, fields and directives.

use std::collections::{HashMap, HashSet};

use graphql_tools::static_graphql::schema::{
    self as ast, Directive, DirectiveDefinition, Document, TypeDefinition,
};

type Definition = graphql_tools::parser::schema::Definition<'static, String>;
use indexmap::IndexMap;

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// A type reference with its wrappers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl TypeRef {
    fn from_ast(ty: &ast::Type) -> Self {
        match ty {
            ast::Type::NamedType(name) => Self::Named(name.clone()),
            ast::Type::ListType(inner) => Self::List(Box::new(Self::from_ast(inner))),
            ast::Type::NonNullType(inner) => Self::NonNull(Box::new(Self::from_ast(inner))),
        }
    }

    /// The named type under all wrappers.
    pub fn named(&self) -> &str {
        match self {
            Self::Named(name) => name,
            Self::List(inner) | Self::NonNull(inner) => inner.named(),
        }
    }
}

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(name) => f.write_str(name),
            Self::List(inner) => write!(f, "[{inner}]"),
            Self::NonNull(inner) => write!(f, "{inner}!"),
        }
    }
}

/// The six kinds of named types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl TypeKind {
    /// The `__TypeKind` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scalar => "SCALAR",
            Self::Object => "OBJECT",
            Self::Interface => "INTERFACE",
            Self::Union => "UNION",
            Self::Enum => "ENUM",
            Self::InputObject => "INPUT_OBJECT",
        }
    }

    pub fn is_leaf(self) -> bool {
        matches!(self, Self::Scalar | Self::Enum)
    }
}

/// An argument or input field.
#[derive(Debug, Clone)]
pub struct InputValueDef {
    pub name: String,
    pub description: Option<String>,
    pub ty: TypeRef,
    /// The default, as a GraphQL literal (what introspection shows) and as JSON.
    pub default_value: Option<(String, serde_json::Value)>,
    pub deprecation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub description: Option<String>,
    pub args: Vec<InputValueDef>,
    pub ty: TypeRef,
    pub deprecation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EnumValueDef {
    pub name: String,
    pub description: Option<String>,
    pub deprecation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub name: String,
    pub kind: TypeKind,
    pub description: Option<String>,
    pub fields: IndexMap<String, FieldDef>,
    pub interfaces: Vec<String>,
    /// Object types of a union, or implementing an interface.
    pub possible_types: Vec<String>,
    pub enum_values: Vec<EnumValueDef>,
    pub input_fields: Vec<InputValueDef>,
    pub specified_by: Option<String>,
    pub one_of: bool,
}

#[derive(Debug, Clone)]
pub struct DirectiveDef {
    pub name: String,
    pub description: Option<String>,
    pub locations: Vec<String>,
    pub args: Vec<InputValueDef>,
    pub repeatable: bool,
}

/// The public schema, indexed.
#[derive(Debug)]
pub struct SchemaIndex {
    pub description: Option<String>,
    pub query_type: String,
    pub mutation_type: Option<String>,
    pub subscription_type: Option<String>,
    pub types: IndexMap<String, TypeDef>,
    pub directives: Vec<DirectiveDef>,
}

impl SchemaIndex {
    /// Indexes a public schema document (the planner's consumer schema).
    pub fn new(document: &Document) -> Self {
        let mut index = Self {
            description: None,
            query_type: "Query".into(),
            mutation_type: None,
            subscription_type: None,
            types: IndexMap::new(),
            directives: Vec::new(),
        };
        for definition in &document.definitions {
            index.add(definition);
        }
        index.add_built_ins();
        index.link_possible_types();
        index
    }

    fn add(&mut self, definition: &Definition) {
        match definition {
            Definition::SchemaDefinition(schema) => {
                self.query_type = schema.query.clone().unwrap_or_else(|| "Query".into());
                self.mutation_type = schema.mutation.clone();
                self.subscription_type = schema.subscription.clone();
            }
            Definition::TypeDefinition(ty) => {
                let def = type_def(ty);
                self.types.insert(def.name.clone(), def);
            }
            Definition::DirectiveDefinition(d) => self.directives.push(directive_def(d)),
            Definition::TypeExtension(_) => {}
        }
        if !matches!(definition, Definition::SchemaDefinition(_)) && self.mutation_type.is_none() {
            self.mutation_type = self.types.contains_key("Mutation").then(|| "Mutation".into());
        }
        if self.subscription_type.is_none() {
            self.subscription_type = self.types.contains_key("Subscription").then(|| "Subscription".into());
        }
    }

    /// The standard scalars and directives, when the document does not define them.
    fn add_built_ins(&mut self) {
        let used = self.used_type_names();
        for scalar in BUILT_IN_SCALARS {
            if used.contains(scalar) && !self.types.contains_key(scalar) {
                self.types.insert(scalar.into(), scalar_def(scalar));
            }
        }
        for directive in built_in_directives() {
            if !self.directives.iter().any(|d| d.name == directive.name) {
                self.directives.push(directive);
            }
        }
    }

    fn used_type_names(&self) -> HashSet<String> {
        let mut used: HashSet<String> = HashSet::from(["String".to_owned(), "Boolean".to_owned()]);
        for ty in self.types.values() {
            for field in ty.fields.values() {
                used.insert(field.ty.named().to_owned());
                used.extend(field.args.iter().map(|a| a.ty.named().to_owned()));
            }
            used.extend(ty.input_fields.iter().map(|f| f.ty.named().to_owned()));
        }
        used
    }

    fn link_possible_types(&mut self) {
        let mut implementers: HashMap<String, Vec<String>> = HashMap::new();
        for ty in self.types.values().filter(|t| t.kind == TypeKind::Object) {
            for interface in &ty.interfaces {
                implementers.entry(interface.clone()).or_default().push(ty.name.clone());
            }
        }
        for ty in self.types.values_mut().filter(|t| t.kind == TypeKind::Interface) {
            ty.possible_types = implementers.remove(&ty.name).unwrap_or_default();
        }
    }

    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The field `name` of type `parent`.
    pub fn field(&self, parent: &str, name: &str) -> Option<&FieldDef> {
        self.types.get(parent).and_then(|t| t.fields.get(name))
    }

    /// The root type of an operation kind (`query`, `mutation`, `subscription`).
    pub fn root_type(&self, kind: OperationType) -> Option<&str> {
        match kind {
            OperationType::Query => Some(self.query_type.as_str()),
            OperationType::Mutation => self.mutation_type.as_deref(),
            OperationType::Subscription => self.subscription_type.as_deref(),
        }
    }

    /// Whether an object of type `object` satisfies the type condition `condition`.
    pub fn matches(&self, object: &str, condition: &str) -> bool {
        object == condition
            || self.types.get(condition).is_some_and(|c| c.possible_types.iter().any(|t| t == object))
    }

    /// Whether `name` is an object, interface or union type.
    pub fn is_composite(&self, name: &str) -> bool {
        self.types.get(name).is_some_and(|t| !t.kind.is_leaf() && t.kind != TypeKind::InputObject)
    }
}

/// The three operation types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationType {
    Query,
    Mutation,
    Subscription,
}

impl OperationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
            Self::Subscription => "subscription",
        }
    }
}

fn type_def(ty: &TypeDefinition) -> TypeDef {
    let mut def = TypeDef {
        name: String::new(),
        kind: TypeKind::Scalar,
        description: None,
        fields: IndexMap::new(),
        interfaces: Vec::new(),
        possible_types: Vec::new(),
        enum_values: Vec::new(),
        input_fields: Vec::new(),
        specified_by: None,
        one_of: false,
    };
    match ty {
        TypeDefinition::Scalar(s) => {
            def.name.clone_from(&s.name);
            def.description.clone_from(&s.description);
            def.specified_by = directive_string(&s.directives, "specifiedBy", "url");
        }
        TypeDefinition::Object(o) => {
            (def.name, def.kind, def.description) = (o.name.clone(), TypeKind::Object, o.description.clone());
            def.fields = o.fields.iter().map(|f| (f.name.clone(), field_def(f))).collect();
            def.interfaces.clone_from(&o.implements_interfaces);
        }
        TypeDefinition::Interface(i) => {
            (def.name, def.kind, def.description) =
                (i.name.clone(), TypeKind::Interface, i.description.clone());
            def.fields = i.fields.iter().map(|f| (f.name.clone(), field_def(f))).collect();
            def.interfaces.clone_from(&i.implements_interfaces);
        }
        TypeDefinition::Union(u) => {
            (def.name, def.kind, def.description) = (u.name.clone(), TypeKind::Union, u.description.clone());
            def.possible_types.clone_from(&u.types);
        }
        TypeDefinition::Enum(e) => {
            (def.name, def.kind, def.description) = (e.name.clone(), TypeKind::Enum, e.description.clone());
            def.enum_values = e
                .values
                .iter()
                .map(|v| EnumValueDef {
                    name: v.name.clone(),
                    description: v.description.clone(),
                    deprecation: deprecation(&v.directives),
                })
                .collect();
        }
        TypeDefinition::InputObject(i) => {
            (def.name, def.kind, def.description) =
                (i.name.clone(), TypeKind::InputObject, i.description.clone());
            def.input_fields = i.fields.iter().map(input_value_def).collect();
            def.one_of = i.directives.iter().any(|d| d.name == "oneOf");
        }
    }
    def
}

fn field_def(f: &ast::Field) -> FieldDef {
    FieldDef {
        name: f.name.clone(),
        description: f.description.clone(),
        args: f.arguments.iter().map(input_value_def).collect(),
        ty: TypeRef::from_ast(&f.field_type),
        deprecation: deprecation(&f.directives),
    }
}

fn input_value_def(v: &ast::InputValue) -> InputValueDef {
    InputValueDef {
        name: v.name.clone(),
        description: v.description.clone(),
        ty: TypeRef::from_ast(&v.value_type),
        default_value: v.default_value.as_ref().map(|d| (d.to_string(), crate::value::const_to_json(d))),
        deprecation: deprecation(&v.directives),
    }
}

fn directive_def(d: &DirectiveDefinition) -> DirectiveDef {
    DirectiveDef {
        name: d.name.clone(),
        description: d.description.clone(),
        locations: d.locations.iter().map(|l| l.as_str().to_owned()).collect(),
        args: d.arguments.iter().map(input_value_def).collect(),
        repeatable: d.repeatable,
    }
}

fn scalar_def(name: &str) -> TypeDef {
    let description = match name {
        "String" => {
            "The `String` scalar type represents textual data, represented as UTF-8 character sequences."
        }
        "Int" => {
            "The `Int` scalar type represents non-fractional signed whole numeric values between -(2^31) and 2^31 - 1."
        }
        "Float" => {
            "The `Float` scalar type represents signed double-precision fractional values as specified by IEEE 754."
        }
        "Boolean" => "The `Boolean` scalar type represents `true` or `false`.",
        _ => "The `ID` scalar type represents a unique identifier, serialized as a string.",
    };
    let mut def = type_def(&TypeDefinition::Scalar(ast::ScalarType::new(name.to_owned())));
    def.description = Some(description.to_owned());
    def
}

/// `@deprecated(reason:)`: `Some(reason)` when present (the spec's default reason when omitted).
fn deprecation(directives: &[Directive]) -> Option<String> {
    directives.iter().find(|d| d.name == "deprecated").map(|d| {
        d.arguments
            .iter()
            .find(|(name, _)| name == "reason")
            .and_then(|(_, v)| match v {
                ast::Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "No longer supported".to_owned())
    })
}

fn directive_string(directives: &[Directive], directive: &str, argument: &str) -> Option<String> {
    let d = directives.iter().find(|d| d.name == directive)?;
    d.arguments.iter().find(|(name, _)| name == argument).and_then(|(_, v)| match v {
        ast::Value::String(s) => Some(s.clone()),
        _ => None,
    })
}

fn built_in_directives() -> Vec<DirectiveDef> {
    let boolean_if = |description: &str| InputValueDef {
        name: "if".into(),
        description: Some(description.into()),
        ty: TypeRef::NonNull(Box::new(TypeRef::Named("Boolean".into()))),
        default_value: None,
        deprecation: None,
    };
    let field_locations =
        || vec!["FIELD".to_owned(), "FRAGMENT_SPREAD".to_owned(), "INLINE_FRAGMENT".to_owned()];
    vec![
        DirectiveDef {
            name: "include".into(),
            description: Some(
                "Directs the executor to include this field or fragment only when the `if` argument is true."
                    .into(),
            ),
            locations: field_locations(),
            args: vec![boolean_if("Included when true.")],
            repeatable: false,
        },
        DirectiveDef {
            name: "skip".into(),
            description: Some(
                "Directs the executor to skip this field or fragment when the `if` argument is true.".into(),
            ),
            locations: field_locations(),
            args: vec![boolean_if("Skipped when true.")],
            repeatable: false,
        },
        DirectiveDef {
            name: "deprecated".into(),
            description: Some("Marks an element of a GraphQL schema as no longer supported.".into()),
            locations: ["FIELD_DEFINITION", "ARGUMENT_DEFINITION", "INPUT_FIELD_DEFINITION", "ENUM_VALUE"]
                .map(str::to_owned)
                .to_vec(),
            args: vec![InputValueDef {
                name: "reason".into(),
                description: Some("Explains why this element was deprecated.".into()),
                ty: TypeRef::Named("String".into()),
                default_value: Some(("\"No longer supported\"".into(), "No longer supported".into())),
                deprecation: None,
            }],
            repeatable: false,
        },
        DirectiveDef {
            name: "specifiedBy".into(),
            description: Some("Exposes a URL that specifies the behavior of this scalar.".into()),
            locations: vec!["SCALAR".into()],
            args: vec![InputValueDef {
                name: "url".into(),
                description: Some("The URL that specifies the behavior of this scalar.".into()),
                ty: TypeRef::NonNull(Box::new(TypeRef::Named("String".into()))),
                default_value: None,
                deprecation: None,
            }],
            repeatable: false,
        },
        DirectiveDef {
            name: "oneOf".into(),
            description: Some(
                "Indicates exactly one field must be supplied and this field must not be `null`.".into(),
            ),
            locations: vec!["INPUT_OBJECT".into()],
            args: Vec::new(),
            repeatable: false,
        },
    ]
}
