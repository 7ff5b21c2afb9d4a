//! Cognito: the user pool, its web client and its pre-sign-up trigger (registered
//! first: the pool names it).

use super::functions::{Env, Lambdas};
use super::{Handle, Plan};
use crate::aws::{LambdaPermission, UserPool, UserPoolClient};
use crate::config::StackConfig;
use crate::input::Input;
use crate::model::Service;
use crate::{DeployError, concat_input};
use switchboard_core::names::env;

/// Refresh tokens live 30 days (the reference design; Cognito's default, set
/// explicitly).
pub const REFRESH_TOKEN_DAYS: u32 = 30;
/// An administrator-created user's temporary password is valid 7 days (the reference
/// design; Cognito's default, set explicitly).
pub const TEMPORARY_PASSWORD_DAYS: u32 = 7;

/// The user pool and what tokens are checked against.
pub(super) struct Cognito {
    /// The user pool.
    pub(super) pool: Handle,
    /// The web client (the tokens' audience).
    pub(super) client: Handle,
    /// The tokens' issuer.
    pub(super) issuer: Input,
}

impl Cognito {
    /// The environment of the functions that check tokens.
    pub(super) fn jwt_env(&self) -> Env {
        vec![
            (env::JWT_ISSUER.to_owned(), self.issuer.clone()),
            (
                env::JWKS_URL.to_owned(),
                concat_input![self.issuer.clone(), "/.well-known/jwks.json"],
            ),
            (env::JWT_AUDIENCE.to_owned(), self.client.id()),
        ]
    }
}

/// The pre-sign-up trigger (role, function), the user pool, its client, and the
/// trigger's permission.
pub(super) fn cognito(
    p: &mut Plan,
    service: &Service,
    cfg: &StackConfig,
    prefix: &str,
    lambdas: &Lambdas<'_>,
) -> Result<Cognito, DeployError> {
    let presignup = service
        .function("cognito:pre-signup")
        .ok_or_else(|| DeployError::Plan("no pre-sign-up function".into()))?;
    let presignup_role = lambdas.role(p, presignup, Vec::new());
    let presignup_fn = lambdas.function(
        p,
        presignup,
        presignup_role,
        vec![(
            env::AUTO_CONFIRM_USERS.into(),
            Input::str(cfg.auto_confirm_users.to_string()),
        )],
    );
    let pool = user_pool(p, cfg, prefix, presignup_fn);
    let client = p.add(
        "web",
        UserPoolClient {
            name: format!("{prefix}-web"),
            user_pool_id: pool.id(),
            generate_secret: false,
            explicit_auth_flows: Input::strs([
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ])
            .into_list(),
            prevent_user_existence_errors: "ENABLED",
            refresh_token_validity: REFRESH_TOKEN_DAYS,
            token_validity_units: Input::object([("refreshToken", Some(Input::str("days")))]),
        },
    );
    p.add(
        presignup.slug.clone(),
        LambdaPermission {
            action: "lambda:InvokeFunction",
            function: presignup_fn.out("name"),
            principal: "cognito-idp.amazonaws.com",
            source_arn: pool.out("arn"),
        },
    );
    let region = cfg.region.as_str();
    let issuer = concat_input![
        format!("https://cognito-idp.{region}.amazonaws.com/"),
        pool.id()
    ];
    Ok(Cognito {
        pool,
        client,
        issuer,
    })
}

/// The user pool, with its password policy and pre-sign-up trigger.
fn user_pool(p: &mut Plan, cfg: &StackConfig, prefix: &str, presignup_fn: Handle) -> Handle {
    p.add(
        "users",
        UserPool {
            name: format!("{prefix}-users"),
            auto_verified_attributes: vec![Input::str("email")],
            password_policy: Input::object([
                ("minimumLength", Some(Input::from(12u32))),
                ("requireLowercase", Some(Input::Bool(true))),
                ("requireUppercase", Some(Input::Bool(true))),
                ("requireNumbers", Some(Input::Bool(true))),
                ("requireSymbols", Some(Input::Bool(false))),
                (
                    "temporaryPasswordValidityDays",
                    Some(Input::from(TEMPORARY_PASSWORD_DAYS)),
                ),
            ]),
            lambda_config: Input::object([("preSignUp", Some(presignup_fn.out("arn")))]),
            deletion_protection: if cfg.stage == "prod" {
                "ACTIVE"
            } else {
                "INACTIVE"
            },
        },
    )
}
