//! Manual actions on one account a connection provisioned: delete it, or
//! unlink it from its source person; each with an audit record, in one
//! transaction.

use chrono::Utc;
use rostersync_store::{
    AccountStatus, AccountWrite, AuditEntry, LinkWrite, RunMode, RunRecord, Store, WriteSet,
};

use crate::SyncError;

/// The source person linked to `account` in `connection`.
async fn linked_person(
    store: &Store,
    connection: &str,
    account: &str,
) -> Result<String, SyncError> {
    store
        .account(account)
        .await?
        .ok_or_else(|| SyncError::NoSuchAccount(account.to_string()))?;
    store
        .links(connection)
        .await?
        .into_iter()
        .find(|(_, linked)| linked == account)
        .map(|(person, _)| person)
        .ok_or_else(|| SyncError::NotThisConnections {
            account: account.to_string(),
            connection: connection.to_string(),
        })
}

async fn act(
    store: &Store,
    connection: &str,
    account: &str,
    actor: &str,
    action: &str,
    writes: impl FnOnce(&mut WriteSet, &str),
) -> Result<(), SyncError> {
    let person = linked_person(store, connection, account).await?;
    let mut set = WriteSet::new(RunRecord::new(RunMode::Full, "manual", Utc::now()));
    writes(&mut set, &person);
    let audit = AuditEntry {
        at: Utc::now(),
        actor: actor.to_string(),
        action: action.into(),
        connection: Some(connection.to_string()),
        subject: format!("account {account}"),
        detail: format!("source person {person}"),
    };
    store
        .manual_account_action(connection, &set, &audit)
        .await?;
    Ok(())
}

/// Deletes a provisioned account and its link. The source person stays in
/// the roster; a forced full re-run provisions them again.
pub async fn delete_account(
    store: &Store,
    connection: &str,
    account: &str,
    actor: &str,
) -> Result<(), SyncError> {
    act(
        store,
        connection,
        account,
        actor,
        "account.delete",
        |set, person| {
            set.accounts.push(AccountWrite::SetStatus {
                id: account.to_string(),
                status: AccountStatus::Deleted,
            });
            set.links.push(LinkWrite::Unlink {
                source_id: person.to_string(),
            });
        },
    )
    .await
}

/// Unties an account from its source person; the account itself stays.
pub async fn unlink_account(
    store: &Store,
    connection: &str,
    account: &str,
    actor: &str,
) -> Result<(), SyncError> {
    act(
        store,
        connection,
        account,
        actor,
        "account.unlink",
        |set, person| {
            set.links.push(LinkWrite::Unlink {
                source_id: person.to_string(),
            });
        },
    )
    .await
}
