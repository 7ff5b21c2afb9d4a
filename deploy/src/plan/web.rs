//! The web page: a private bucket with the page and its static files, which CloudFront
//! reads with an origin access control; the bucket policy lets only the distribution.

use super::{Handle, Plan, physical};
use crate::aws::{
    OriginAccessControl, S3Bucket, S3BucketPolicy, S3BucketPublicAccessBlock, S3Object,
};
use crate::concat_input;
use crate::input::Input;
use crate::model::Service;

/// The page's bucket and CloudFront's access to it.
pub(super) struct Web {
    /// The bucket.
    pub(super) bucket: Handle,
    /// The origin access control CloudFront reads it with.
    pub(super) oac: Handle,
}

/// The bucket, its public access block, the page, its static files and the OAC.
pub(super) fn web(p: &mut Plan, service: &Service, prefix: &str, web_page: &str) -> Web {
    let bucket = p.add(
        "web",
        S3Bucket {
            force_destroy: true,
        },
    );
    p.add(
        "web",
        S3BucketPublicAccessBlock {
            bucket: bucket.id(),
            block_public_acls: true,
            block_public_policy: true,
            ignore_public_acls: true,
            restrict_public_buckets: true,
        },
    );
    p.add(
        "index",
        S3Object {
            bucket: bucket.id(),
            key: "index.html".to_owned(),
            content: web_page.to_owned(),
            content_type: "text/html; charset=utf-8".to_owned(),
            cache_control: "no-cache",
        },
    );
    // The page's static files (App::web_asset), at their paths.
    for asset in &service.web_assets {
        let key = asset.path.trim_start_matches('/');
        p.add(
            format!("asset-{key}"),
            S3Object {
                bucket: bucket.id(),
                key: key.to_owned(),
                content: asset.content.clone(),
                content_type: asset.content_type.clone(),
                cache_control: "no-cache",
            },
        );
    }
    let oac = p.add(
        "web",
        OriginAccessControl {
            name: physical(prefix, "web", 64),
            origin_access_control_origin_type: "s3",
            signing_behavior: "always",
            signing_protocol: "sigv4",
        },
    );
    Web { bucket, oac }
}

/// The bucket policy: CloudFront may read the objects, for this distribution only.
pub(super) fn bucket_policy(p: &mut Plan, web: &Web, distribution: Handle) {
    let bucket = web.bucket;
    p.add(
        "web",
        S3BucketPolicy {
            bucket: bucket.id(),
            policy: Input::Json(Box::new(Input::object([
                ("Version", Some(Input::str("2012-10-17"))),
                (
                    "Statement",
                    Some(Input::List(vec![Input::object([
                        ("Effect", Some(Input::str("Allow"))),
                        (
                            "Principal",
                            Some(Input::object([(
                                "Service",
                                Some(Input::str("cloudfront.amazonaws.com")),
                            )])),
                        ),
                        ("Action", Some(Input::strs(["s3:GetObject"]))),
                        (
                            "Resource",
                            Some(Input::List(vec![concat_input![bucket.out("arn"), "/*"]])),
                        ),
                        (
                            "Condition",
                            Some(Input::object([(
                                "StringEquals",
                                Some(Input::object([(
                                    "AWS:SourceArn",
                                    Some(distribution.out("arn")),
                                )])),
                            )])),
                        ),
                    ])])),
                ),
            ]))),
        },
    );
}
