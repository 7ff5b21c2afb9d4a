//! The typed layer: one struct per AWS resource type the program declares, named after
//! the Pulumi AWS provider's type token, with the input properties it sets (Pulumi's
//! camelCase names). Required inputs are plain fields; optional ones are `Option`s and
//! are left out when `None` (the program never sends null).
//!
//! Tokens and property names are checked against the pinned `pulumi_aws` SDK by
//! `app-deploy/tests/schema.rs`.

use std::collections::BTreeMap;

use crate::input::Input;

/// The Pulumi AWS provider version the program asks the engine for (keep equal to
/// `PULUMI_AWS_VERSION` in `scripts/pulumi-aws-schema.sh`).
pub const AWS_PROVIDER_VERSION: &str = "7.51.1";

/// A resource type of the typed layer.
pub trait AwsResource {
    /// The Pulumi type token.
    const TOKEN: &'static str;
    /// The input properties.
    fn inputs(self) -> BTreeMap<String, Input>;
}

/// A field value that may go into the input map.
pub trait IntoField {
    /// Puts `self` under `key` unless it is absent.
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>);
}

impl IntoField for Input {
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>) {
        map.insert(key.to_owned(), self);
    }
}

impl<T: IntoField> IntoField for Option<T> {
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>) {
        if let Some(v) = self {
            v.put(key, map);
        }
    }
}

impl IntoField for u32 {
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>) {
        Input::from(self).put(key, map);
    }
}

impl IntoField for bool {
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>) {
        Input::Bool(self).put(key, map);
    }
}

impl IntoField for &'static str {
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>) {
        Input::from(self).put(key, map);
    }
}

impl IntoField for String {
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>) {
        Input::Str(self).put(key, map);
    }
}

impl IntoField for Vec<Input> {
    fn put(self, key: &str, map: &mut BTreeMap<String, Input>) {
        Input::List(self).put(key, map);
    }
}

/// Inputs merged into the map as they are (a provider's inherited settings).
#[derive(Clone, Debug, Default)]
pub struct Extra(pub BTreeMap<String, Input>);

impl IntoField for Extra {
    fn put(self, _key: &str, map: &mut BTreeMap<String, Input>) {
        map.extend(self.0);
    }
}

macro_rules! resources {
    ($(
        $(#[$m:meta])*
        $name:ident = $token:literal {
            $( $(#[$fm:meta])* $field:ident : $ty:ty => $key:literal ),* $(,)?
        }
    )*) => {$(
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl AwsResource for $name {
            const TOKEN: &'static str = $token;
            fn inputs(self) -> BTreeMap<String, Input> {
                let mut map = BTreeMap::new();
                $( IntoField::put(self.$field, $key, &mut map); )*
                map
            }
        }
    )*};
}

resources! {
    /// An explicit AWS provider (the us-east-1 one for CloudFront's certificate and WAF).
    Provider = "pulumi:providers:aws" {
        /// The region.
        region: String => "region",
        /// The stack's own `aws:*` settings (profile, assumed roles, credentials, ...),
        /// which an explicit provider does not inherit by itself.
        inherited: Extra => "",
    }

    /// An IAM role with inline policies.
    IamRole = "aws:iam/role:Role" {
        /// The role's name.
        name: String => "name",
        /// The trust policy (JSON).
        assume_role_policy: Input => "assumeRolePolicy",
        /// `[{name, policy}]`.
        inline_policies: Vec<Input> => "inlinePolicies",
    }

    /// A managed policy attached to a role.
    IamRolePolicyAttachment = "aws:iam/rolePolicyAttachment:RolePolicyAttachment" {
        /// The role's name.
        role: Input => "role",
        /// The policy's ARN.
        policy_arn: &'static str => "policyArn",
    }

    /// A CloudWatch log group.
    LogGroup = "aws:cloudwatch/logGroup:LogGroup" {
        /// Its name.
        name: String => "name",
        /// Retention.
        retention_in_days: u32 => "retentionInDays",
    }

    /// A Lambda function.
    LambdaFunction = "aws:lambda/function:Function" {
        /// Function name.
        name: String => "name",
        /// Execution role ARN.
        role: Input => "role",
        /// `provided.al2023`.
        runtime: &'static str => "runtime",
        /// The role string the binary dispatches on.
        handler: String => "handler",
        /// `["arm64"]`.
        architectures: Vec<Input> => "architectures",
        /// The artifact.
        code: Input => "code",
        /// MB.
        memory_size: u32 => "memorySize",
        /// Seconds.
        timeout: u32 => "timeout",
        /// `{variables: {...}}`.
        environment: Input => "environment",
        /// `{logFormat, logGroup}`.
        logging_config: Input => "loggingConfig",
        /// Reserved concurrency (the `fanout` function's, from config).
        reserved_concurrent_executions: Option<u32> => "reservedConcurrentExecutions",
    }

    /// Permission for a service to invoke a function.
    LambdaPermission = "aws:lambda/permission:Permission" {
        /// `lambda:InvokeFunction`.
        action: &'static str => "action",
        /// The function (name or ARN).
        function: Input => "function",
        /// The service principal.
        principal: &'static str => "principal",
        /// The caller's ARN (pattern).
        source_arn: Input => "sourceArn",
    }

    /// SQS to Lambda.
    EventSourceMapping = "aws:lambda/eventSourceMapping:EventSourceMapping" {
        /// The queue ARN.
        event_source_arn: Input => "eventSourceArn",
        /// The function ARN.
        function_name: Input => "functionName",
        /// Messages per invocation.
        batch_size: u32 => "batchSize",
        /// `["ReportBatchItemFailures"]`.
        function_response_types: Vec<Input> => "functionResponseTypes",
    }

    /// An API Gateway v2 API (WebSocket or HTTP).
    ApiGatewayV2Api = "aws:apigatewayv2/api:Api" {
        /// Name.
        name: String => "name",
        /// `WEBSOCKET` or `HTTP`.
        protocol_type: &'static str => "protocolType",
        /// `$request.body.action` (WebSocket).
        route_selection_expression: Option<String> => "routeSelectionExpression",
        /// Where API keys are read (WebSocket): `$request.header.x-api-key`.
        api_key_selection_expression: Option<&'static str> => "apiKeySelectionExpression",
    }

    /// An API authorizer.
    ApiGatewayV2Authorizer = "aws:apigatewayv2/authorizer:Authorizer" {
        /// The API.
        api_id: Input => "apiId",
        /// `REQUEST` or `JWT`.
        authorizer_type: &'static str => "authorizerType",
        /// Name.
        name: String => "name",
        /// The Lambda invoke ARN (REQUEST).
        authorizer_uri: Option<Input> => "authorizerUri",
        /// Where the identity is (JWT).
        identity_sources: Option<Vec<Input>> => "identitySources",
        /// `{issuer, audiences}` (JWT).
        jwt_configuration: Option<Input> => "jwtConfiguration",
    }

    /// An API integration.
    ApiGatewayV2Integration = "aws:apigatewayv2/integration:Integration" {
        /// The API.
        api_id: Input => "apiId",
        /// `AWS_PROXY`.
        integration_type: &'static str => "integrationType",
        /// The Lambda invoke ARN.
        integration_uri: Input => "integrationUri",
        /// `POST`.
        integration_method: &'static str => "integrationMethod",
        /// `2.0` for HTTP APIs.
        payload_format_version: Option<&'static str> => "payloadFormatVersion",
    }

    /// An API route.
    ApiGatewayV2Route = "aws:apigatewayv2/route:Route" {
        /// The API.
        api_id: Input => "apiId",
        /// The route key.
        route_key: String => "routeKey",
        /// `integrations/{id}`.
        target: Input => "target",
        /// `NONE`, `CUSTOM` or `JWT`.
        authorization_type: &'static str => "authorizationType",
        /// The authorizer.
        authorizer_id: Option<Input> => "authorizerId",
        /// `$default` for two-way routes.
        route_response_selection_expression: Option<&'static str> => "routeResponseSelectionExpression",
        /// Whether the route needs an API key (WebSocket: `$connect` only).
        api_key_required: Option<bool> => "apiKeyRequired",
    }

    /// A WebSocket route response.
    ApiGatewayV2RouteResponse = "aws:apigatewayv2/routeResponse:RouteResponse" {
        /// The API.
        api_id: Input => "apiId",
        /// The route.
        route_id: Input => "routeId",
        /// `$default`.
        route_response_key: &'static str => "routeResponseKey",
    }

    /// A deployment of the WebSocket API.
    ApiGatewayV2Deployment = "aws:apigatewayv2/deployment:Deployment" {
        /// The API.
        api_id: Input => "apiId",
        /// Human text.
        description: String => "description",
        /// Changes force a new deployment.
        triggers: Input => "triggers",
    }

    /// A stage.
    ApiGatewayV2Stage = "aws:apigatewayv2/stage:Stage" {
        /// The API.
        api_id: Input => "apiId",
        /// `ws` or `$default`.
        name: &'static str => "name",
        /// The deployment (WebSocket).
        deployment_id: Option<Input> => "deploymentId",
        /// Deploy on every change (HTTP).
        auto_deploy: Option<bool> => "autoDeploy",
        /// Throttling.
        default_route_settings: Input => "defaultRouteSettings",
        /// Access logs.
        access_log_settings: Option<Input> => "accessLogSettings",
        /// Per-route throttling: `[{routeKey, throttlingRateLimit, throttlingBurstLimit}]`.
        route_settings: Option<Vec<Input>> => "routeSettings",
    }

    /// The account's API Gateway settings (the CloudWatch role for access logs).
    ApiGatewayAccount = "aws:apigateway/account:Account" {
        /// The role API Gateway writes logs with.
        cloudwatch_role_arn: Input => "cloudwatchRoleArn",
    }

    /// A DynamoDB table.
    DynamoTable = "aws:dynamodb/table:Table" {
        /// Name.
        name: String => "name",
        /// `PAY_PER_REQUEST`.
        billing_mode: &'static str => "billingMode",
        /// Partition key.
        hash_key: &'static str => "hashKey",
        /// Sort key.
        range_key: &'static str => "rangeKey",
        /// `[{name, type}]`.
        attributes: Vec<Input> => "attributes",
        /// `[{name, hashKey, rangeKey?, projectionType}]`.
        global_secondary_indexes: Vec<Input> => "globalSecondaryIndexes",
        /// `{attributeName, enabled}`.
        ttl: Input => "ttl",
        /// `{enabled}`.
        server_side_encryption: Input => "serverSideEncryption",
        /// `{enabled}`.
        point_in_time_recovery: Input => "pointInTimeRecovery",
    }

    /// An SQS queue.
    SqsQueue = "aws:sqs/queue:Queue" {
        /// Name (`.fifo` for a FIFO queue).
        name: String => "name",
        /// FIFO.
        fifo_queue: bool => "fifoQueue",
        /// Off: senders give deduplication ids.
        content_based_deduplication: bool => "contentBasedDeduplication",
        /// Seconds.
        visibility_timeout_seconds: u32 => "visibilityTimeoutSeconds",
        /// Seconds.
        message_retention_seconds: u32 => "messageRetentionSeconds",
        /// SSE-SQS.
        sqs_managed_sse_enabled: bool => "sqsManagedSseEnabled",
        /// `{deadLetterTargetArn, maxReceiveCount}` as JSON.
        redrive_policy: Option<Input> => "redrivePolicy",
    }

    /// A Cognito user pool.
    UserPool = "aws:cognito/userPool:UserPool" {
        /// Name.
        name: String => "name",
        /// `["email"]`.
        auto_verified_attributes: Vec<Input> => "autoVerifiedAttributes",
        /// `{minimumLength, ...}`.
        password_policy: Input => "passwordPolicy",
        /// `{preSignUp}`.
        lambda_config: Input => "lambdaConfig",
        /// `ACTIVE` or `INACTIVE`.
        deletion_protection: &'static str => "deletionProtection",
    }

    /// A Cognito app client.
    UserPoolClient = "aws:cognito/userPoolClient:UserPoolClient" {
        /// Name.
        name: String => "name",
        /// The pool.
        user_pool_id: Input => "userPoolId",
        /// Public client (a browser page).
        generate_secret: bool => "generateSecret",
        /// Sign-in flows.
        explicit_auth_flows: Vec<Input> => "explicitAuthFlows",
        /// Hide whether a user exists.
        prevent_user_existence_errors: &'static str => "preventUserExistenceErrors",
        /// Refresh tokens' lifetime, in `tokenValidityUnits.refreshToken`.
        refresh_token_validity: u32 => "refreshTokenValidity",
        /// `{refreshToken: "days"}`.
        token_validity_units: Input => "tokenValidityUnits",
    }

    /// An S3 bucket (named by Pulumi's auto-naming).
    S3Bucket = "aws:s3/bucket:Bucket" {
        /// Deletes the page object with the bucket.
        force_destroy: bool => "forceDestroy",
    }

    /// Blocks public access to a bucket.
    S3BucketPublicAccessBlock = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock" {
        /// The bucket.
        bucket: Input => "bucket",
        /// On.
        block_public_acls: bool => "blockPublicAcls",
        /// On.
        block_public_policy: bool => "blockPublicPolicy",
        /// On.
        ignore_public_acls: bool => "ignorePublicAcls",
        /// On.
        restrict_public_buckets: bool => "restrictPublicBuckets",
    }

    /// An object in a bucket.
    S3Object = "aws:s3/bucketObjectv2:BucketObjectv2" {
        /// The bucket.
        bucket: Input => "bucket",
        /// The key.
        key: String => "key",
        /// The body.
        content: String => "content",
        /// MIME type.
        content_type: String => "contentType",
        /// Cache-Control.
        cache_control: &'static str => "cacheControl",
    }

    /// A bucket policy.
    S3BucketPolicy = "aws:s3/bucketPolicy:BucketPolicy" {
        /// The bucket.
        bucket: Input => "bucket",
        /// The policy (JSON).
        policy: Input => "policy",
    }

    /// CloudFront's signed access to S3.
    OriginAccessControl = "aws:cloudfront/originAccessControl:OriginAccessControl" {
        /// Name.
        name: String => "name",
        /// `s3`.
        origin_access_control_origin_type: &'static str => "originAccessControlOriginType",
        /// `always`.
        signing_behavior: &'static str => "signingBehavior",
        /// `sigv4`.
        signing_protocol: &'static str => "signingProtocol",
    }

    /// The CloudFront distribution.
    Distribution = "aws:cloudfront/distribution:Distribution" {
        /// On.
        enabled: bool => "enabled",
        /// Text.
        comment: String => "comment",
        /// IPv6 too.
        is_ipv6_enabled: bool => "isIpv6Enabled",
        /// `http2and3`.
        http_version: &'static str => "httpVersion",
        /// `PriceClass_100`.
        price_class: &'static str => "priceClass",
        /// `index.html`.
        default_root_object: &'static str => "defaultRootObject",
        /// The custom domain.
        aliases: Option<Vec<Input>> => "aliases",
        /// Origins.
        origins: Vec<Input> => "origins",
        /// The default behaviour (S3).
        default_cache_behavior: Input => "defaultCacheBehavior",
        /// `/http/*`, `/ws`, `/ws/*`.
        ordered_cache_behaviors: Vec<Input> => "orderedCacheBehaviors",
        /// None.
        restrictions: Input => "restrictions",
        /// The certificate and TLS policy.
        viewer_certificate: Input => "viewerCertificate",
        /// The WAF web ACL's ARN.
        web_acl_id: Input => "webAclId",
    }

    /// An ACM certificate.
    Certificate = "aws:acm/certificate:Certificate" {
        /// The domain.
        domain_name: String => "domainName",
        /// `DNS`.
        validation_method: &'static str => "validationMethod",
    }

    /// Waits for a certificate to be issued.
    CertificateValidation = "aws:acm/certificateValidation:CertificateValidation" {
        /// The certificate.
        certificate_arn: Input => "certificateArn",
        /// The validation records.
        validation_record_fqdns: Vec<Input> => "validationRecordFqdns",
    }

    /// A Route 53 record.
    DnsRecord = "aws:route53/record:Record" {
        /// The zone.
        zone_id: String => "zoneId",
        /// The name.
        name: Input => "name",
        /// `A`, `AAAA`, `CNAME`.
        record_type: Input => "type",
        /// Seconds (plain records).
        ttl: Option<u32> => "ttl",
        /// Values (plain records).
        records: Option<Vec<Input>> => "records",
        /// `[{name, zoneId, evaluateTargetHealth}]` (alias records).
        aliases: Option<Vec<Input>> => "aliases",
        /// Take over an existing validation record.
        allow_overwrite: Option<bool> => "allowOverwrite",
    }

    /// A WAF IP set.
    WafIpSet = "aws:wafv2/ipSet:IpSet" {
        /// Name.
        name: String => "name",
        /// `CLOUDFRONT`.
        scope: &'static str => "scope",
        /// `IPV4`.
        ip_address_version: &'static str => "ipAddressVersion",
        /// CIDRs.
        addresses: Vec<Input> => "addresses",
    }

    /// A WAF web ACL.
    WafWebAcl = "aws:wafv2/webAcl:WebAcl" {
        /// Name.
        name: String => "name",
        /// `CLOUDFRONT`.
        scope: &'static str => "scope",
        /// `{allow: {}}` or `{block: {}}`.
        default_action: Input => "defaultAction",
        /// Rules.
        rules: Vec<Input> => "rules",
        /// Metrics.
        visibility_config: Input => "visibilityConfig",
    }

    /// A CloudFront origin request policy (what reaches the API origins).
    OriginRequestPolicy = "aws:cloudfront/originRequestPolicy:OriginRequestPolicy" {
        /// Name.
        name: String => "name",
        /// Text.
        comment: String => "comment",
        /// `{headerBehavior, headers: {items}}`.
        headers_config: Input => "headersConfig",
        /// `{cookieBehavior}`.
        cookies_config: Input => "cookiesConfig",
        /// `{queryStringBehavior}`.
        query_strings_config: Input => "queryStringsConfig",
    }

    /// A usage plan (REST API Gateway's, shared by WebSocket APIs through `apiStages`).
    UsagePlan = "aws:apigateway/usagePlan:UsagePlan" {
        /// Name.
        name: String => "name",
        /// Text.
        description: String => "description",
        /// `[{apiId, stage}]`.
        api_stages: Vec<Input> => "apiStages",
        /// `{rateLimit, burstLimit}` per key.
        throttle_settings: Input => "throttleSettings",
        /// `{limit, period}` per key.
        quota_settings: Option<Input> => "quotaSettings",
    }

    /// An API key (its value generated by API Gateway).
    ApiKey = "aws:apigateway/apiKey:ApiKey" {
        /// Name.
        name: String => "name",
        /// Text.
        description: String => "description",
        /// On.
        enabled: bool => "enabled",
    }

    /// A key in a usage plan.
    UsagePlanKey = "aws:apigateway/usagePlanKey:UsagePlanKey" {
        /// The key's id.
        key_id: Input => "keyId",
        /// `API_KEY`.
        key_type: &'static str => "keyType",
        /// The plan's id.
        usage_plan_id: Input => "usagePlanId",
    }

    /// An SNS topic (alarms).
    SnsTopic = "aws:sns/topic:Topic" {
        /// Name.
        name: String => "name",
    }

    /// A subscription to a topic.
    SnsTopicSubscription = "aws:sns/topicSubscription:TopicSubscription" {
        /// The topic's ARN.
        topic: Input => "topic",
        /// `email`.
        protocol: &'static str => "protocol",
        /// The address.
        endpoint: String => "endpoint",
    }

    /// A CloudWatch alarm, on one metric or on metric math (`metricQueries`).
    MetricAlarm = "aws:cloudwatch/metricAlarm:MetricAlarm" {
        /// Name.
        name: String => "name",
        /// Text.
        alarm_description: String => "alarmDescription",
        /// `GreaterThanThreshold`, ...
        comparison_operator: &'static str => "comparisonOperator",
        /// Periods evaluated.
        evaluation_periods: u32 => "evaluationPeriods",
        /// The threshold.
        threshold: u32 => "threshold",
        /// `notBreaching`, ...
        treat_missing_data: &'static str => "treatMissingData",
        /// The metric (single-metric alarms).
        metric_name: Option<String> => "metricName",
        /// Its namespace.
        namespace: Option<String> => "namespace",
        /// Seconds.
        period: Option<u32> => "period",
        /// `Sum`, `Maximum`, ...
        statistic: Option<&'static str> => "statistic",
        /// `p99`, ...
        extended_statistic: Option<&'static str> => "extendedStatistic",
        /// `{name: value}`.
        dimensions: Option<Input> => "dimensions",
        /// Metric math.
        metric_queries: Option<Vec<Input>> => "metricQueries",
        /// The topic.
        alarm_actions: Vec<Input> => "alarmActions",
        /// The topic (recovery).
        ok_actions: Vec<Input> => "okActions",
    }

    /// A CloudWatch dashboard.
    Dashboard = "aws:cloudwatch/dashboard:Dashboard" {
        /// Name.
        dashboard_name: String => "dashboardName",
        /// The widgets (JSON).
        dashboard_body: Input => "dashboardBody",
    }
}
