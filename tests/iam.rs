//! The IAM review against moto: seeded roles (the seeds' over-privileged
//! Lambda role with AmazonSageMakerFullAccess, a scoped one, a wildcard role
//! another account may assume, a PassRole escalation) produce the expected
//! findings live; the same account exported as
//! `get-account-authorization-details` JSON (by boto3, as the AWS CLI writes
//! it) gives the same findings offline through `sagedeck iam-review`.

use sagedeck_tests::{repo_root, sagedeck_cli, server_binary, App, AwsSetup, Moto};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

async fn seed(iam: &aws_sdk_iam::Client) {
    let role = |name: &'static str, trust: &'static str| {
        let iam = iam.clone();
        async move { iam.create_role().role_name(name).assume_role_policy_document(trust).send().await.unwrap() }
    };
    let inline = |role: &'static str, doc: &'static str| {
        let iam = iam.clone();
        async move { iam.put_role_policy().role_name(role).policy_name(format!("{role}-inline")).policy_document(doc).send().await.unwrap() }
    };
    role("dogs-lambda-role", LAMBDA_TRUST).await;
    iam.attach_role_policy()
        .role_name("dogs-lambda-role")
        .policy_arn("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
        .send()
        .await
        .unwrap();
    role("scoped-lambda-role", LAMBDA_TRUST).await;
    inline(
        "scoped-lambda-role",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sagemaker:InvokeEndpoint","Resource":"arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs"}]}"#,
    )
    .await;
    role(
        "partner-role",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}]}"#,
    )
    .await;
    inline("partner-role", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#).await;
    role("trainer-role", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#).await;
    inline(
        "trainer-role",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:PassRole","sagemaker:CreateTrainingJob"],"Resource":"*"},{"Effect":"Allow","Action":["secretsmanager:GetSecretValue"],"Resource":"*"}]}"#,
    )
    .await;
}

/// role name → the set of rules that fired.
fn rules_by_role(reports: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    reports
        .iter()
        .map(|r| {
            let rules = r["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect();
            (r["name"].as_str().unwrap().to_string(), rules)
        })
        .collect()
}

#[tokio::test]
async fn seeded_roles_give_the_expected_findings_live_and_offline_alike() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    seed(&aws_sdk_iam::Client::new(&config)).await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    let (code, err) = app.call("iam/review", &[("unused_days", "0")]).await;
    assert_eq!(code, 400, "{err}");
    let (code, review) = app.call("iam/review", &[("unused_days", "90")]).await;
    assert_eq!(code, 200, "{review}\n{}", app.log());
    let reports: Vec<Value> = review["roles"].as_array().unwrap().iter().map(|r| r["report"].clone()).collect();
    let live = rules_by_role(&reports);

    let dogs = &live["dogs-lambda-role"];
    for rule in ["managed-full-access", "escalation-passrole", "service-wildcard", "allow-not-resource"] {
        assert!(dogs.contains(rule), "dogs-lambda-role lacks {rule}: {dogs:?}");
    }
    // Ranked by reach: an administrator another account may assume, then
    // the Lambda role that may pass any role to SageMaker jobs it starts.
    let ranked: Vec<(&str, u64)> = reports.iter().map(|r| (r["name"].as_str().unwrap(), r["score"].as_u64().unwrap())).collect();
    assert_eq!(ranked, [("partner-role", 95), ("dogs-lambda-role", 80), ("trainer-role", 80), ("scoped-lambda-role", 20)], "the riskiest role comes first");
    let dogs_report = &reports[1];
    assert_eq!(dogs_report["findings"][0]["severity"], "Critical");
    assert!(dogs_report["findings"][0]["title"].as_str().unwrap().contains("AmazonSageMakerFullAccess attached to a role Lambda assumes"));
    assert!(live["scoped-lambda-role"].is_empty(), "{:?}", live["scoped-lambda-role"]);
    assert!(live["partner-role"].contains("trust-cross-account") && live["partner-role"].contains("action-wildcard"), "{:?}", live["partner-role"]);
    for rule in ["escalation-passrole", "passrole-wildcard", "passrole-unconditioned", "unscoped-exposure"] {
        assert!(live["trainer-role"].contains(rule), "trainer-role lacks {rule}: {:?}", live["trainer-role"]);
    }

    // The same account exported as the AWS CLI writes it, reviewed offline.
    let file = app.data_path().join("details.json");
    let python = repo_root().join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(
            "import boto3, json, sys\n\
             c = boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             pages = list(c.get_paginator('get_account_authorization_details').paginate(Filter=['Role', 'LocalManagedPolicy', 'AWSManagedPolicy']))\n\
             merged = {'RoleDetailList': [], 'Policies': []}\n\
             for p in pages:\n    merged['RoleDetailList'] += p.get('RoleDetailList', [])\n    merged['Policies'] += p.get('Policies', [])\n\
             json.dump(merged, open(sys.argv[2], 'w'), default=str)\n",
        )
        .arg(&moto.url)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sagedeck_cli(&["iam-review", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let offline: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let offline = rules_by_role(&offline);
    for role in ["dogs-lambda-role", "scoped-lambda-role", "partner-role", "trainer-role"] {
        assert_eq!(offline[role], live[role], "{role}: offline and live differ");
    }

    // A file that is not authorization details is refused in words.
    let bad = app.data_path().join("bad.json");
    std::fs::write(&bad, "{\"Roles\": []}").unwrap();
    let out = std::process::Command::new(server_binary()).args(["iam-review", bad.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RoleDetailList"));
}

#[tokio::test]
async fn without_aws_the_account_review_says_what_to_configure() {
    let app = App::spawn(AwsSetup::None);
    let (code, err) = app.call("iam/review", &[("unused_days", "90")]).await;
    assert_eq!(code, 503, "{err}");
    assert!(err["message"].as_str().unwrap().contains("not configured"), "{err}");
    let (code, body) = app.get("/iam").await;
    assert_eq!(code, 200);
    assert!(body.contains("Live policy editor"));
}

#[tokio::test]
async fn the_lambda_roles_fix_leaves_only_the_scoped_policy_and_rolls_back_against_moto() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    moto.create_completed_training_job("dog-breeds-fix").await;
    let app = App::spawn(AwsSetup::Moto(&moto));
    let endpoint = app.deploy_sagemaker_endpoint("dogs", "dog-breeds-fix").await;
    app.over_privileged_lambda(&moto, "dogs", "dogs-invoke").await;

    let (code, err) = app.call("iam/fix/plan", &[("role", "no such role!")]).await;
    assert_eq!(code, 400, "{err}");
    iam.create_role().role_name("lonely-role").assume_role_policy_document(LAMBDA_TRUST).send().await.unwrap();
    let (code, err) = app.call("iam/fix/plan", &[("role", "lonely-role")]).await;
    assert_eq!(code, 409, "no function uses it: {err}");

    let (code, plan) = app.call("iam/fix/plan", &[("role", "dogs-invoke-role")]).await;
    assert_eq!(code, 200, "{plan}\n{}", app.log());
    assert_eq!(plan["after"]["score"], 20, "it may still invoke its endpoint: {plan:#}");
    assert_eq!(plan["before"]["score"], 80);
    let can = |what: &str| plan["capabilities"].as_array().unwrap().iter().find(|c| c["what"] == what).unwrap().clone();
    assert_eq!((can("Invoke its endpoint")["before"].as_bool(), can("Invoke its endpoint")["after"].as_bool()), (Some(true), Some(true)));
    assert_eq!((can("Create a training job")["before"].as_bool(), can("Create a training job")["after"].as_bool()), (Some(true), Some(false)));

    let (code, outcome) = app.call("iam/fix/apply", &[("role", "dogs-invoke-role")]).await;
    assert_eq!(code, 200, "{outcome}");
    let attached = iam.list_attached_role_policies().role_name("dogs-invoke-role").send().await.unwrap();
    assert!(attached.attached_policies().is_empty(), "FullAccess detached");
    let inline = iam.list_role_policies().role_name("dogs-invoke-role").send().await.unwrap();
    assert_eq!(inline.policy_names(), ["invoke-one-endpoint"]);
    let doc = iam.get_role_policy().role_name("dogs-invoke-role").policy_name("invoke-one-endpoint").send().await.unwrap();
    let doc = percent_encoding::percent_decode_str(doc.policy_document()).decode_utf8_lossy().into_owned();
    assert!(doc.contains(endpoint["arn"].as_str().unwrap()) && !doc.contains("\"*\""), "{doc}");
    let (_, review) = app.call("iam/review", &[("unused_days", "90")]).await;
    let fixed = review["roles"].as_array().unwrap().iter().find(|r| r["report"]["name"] == "dogs-invoke-role").unwrap();
    assert!(fixed["report"]["findings"].as_array().unwrap().is_empty(), "{fixed:#}");

    // One-click rollback from the journal: FullAccess back, the scoped policy gone.
    let id = outcome["change_id"].to_string();
    let (code, reverted) = app.call("journal/revert", &[("id", &id)]).await;
    assert_eq!(code, 200, "{reverted}");
    let attached = iam.list_attached_role_policies().role_name("dogs-invoke-role").send().await.unwrap();
    assert_eq!(attached.attached_policies()[0].policy_arn(), Some("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"));
    let inline = iam.list_role_policies().role_name("dogs-invoke-role").send().await.unwrap();
    assert!(inline.policy_names().is_empty());
    let (code, _) = app.call("journal/revert", &[("id", &id)]).await;
    assert_eq!(code, 409, "a rollback happens once");
}

#[tokio::test]
async fn a_sagemaker_execution_roles_fix_scopes_s3_to_its_jobs_and_passrole_to_sagemaker() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&config);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    // The role the moto helper's training job runs as, with the console's usual FullAccess.
    iam.create_role().role_name("AmazonSageMaker-ExecutionRole").path("/service-role/").assume_role_policy_document(trust).send().await.unwrap();
    iam.attach_role_policy()
        .role_name("AmazonSageMaker-ExecutionRole")
        .policy_arn("arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
        .send()
        .await
        .unwrap();
    moto.create_completed_training_job("dogs-exec-fix").await;
    let app = App::spawn(AwsSetup::Moto(&moto));

    let (code, plan) = app.call("iam/fix/plan", &[("role", "AmazonSageMaker-ExecutionRole")]).await;
    assert_eq!(code, 200, "{plan}\n{}", app.log());
    let doc = plan["put_inline"][1].as_str().unwrap();
    assert!(doc.contains("arn:aws:s3:::dogs/output/*") && doc.contains("iam:PassedToService"), "{doc}");
    assert_eq!(plan["after"]["score"], 20, "it writes its own output only: {plan:#}");
    let (code, outcome) = app.call("iam/fix/apply", &[("role", "AmazonSageMaker-ExecutionRole")]).await;
    assert_eq!(code, 200, "{outcome}");
    let attached = iam.list_attached_role_policies().role_name("AmazonSageMaker-ExecutionRole").send().await.unwrap();
    assert!(attached.attached_policies().is_empty());
    let inline = iam.list_role_policies().role_name("AmazonSageMaker-ExecutionRole").send().await.unwrap();
    assert_eq!(inline.policy_names(), ["sagedeck-least-privilege"]);
    let (code, _) = app.call("journal/revert", &[("id", &outcome["change_id"].to_string())]).await;
    assert_eq!(code, 200);
    let attached = iam.list_attached_role_policies().role_name("AmazonSageMaker-ExecutionRole").send().await.unwrap();
    assert_eq!(attached.attached_policies().len(), 1, "FullAccess is back");
}
