//! Registered (enhanced fan-out) consumers: RegisterStreamConsumer, DeregisterStreamConsumer,
//! DescribeStreamConsumer, ListStreamConsumers. Delivery is `super::subscribe`.

use std::sync::Arc;

use super::store::{self, ConsumerRow, DataStreamId};
use super::{
    ConsumerDescription, DataStream, DataStreams, DsError, MAX_CONSUMERS, StreamSel, lock,
    read_lock, token, validate, write_lock,
};

impl DataStreams {
    // ---- consumers --------------------------------------------------------------------------

    fn consumer_arn(&self, stream: &str, c: &ConsumerRow) -> String {
        format!(
            "{}/consumer/{}:{}",
            self.stream_arn(stream),
            c.name,
            c.created_at.as_millis() / 1000
        )
    }

    fn consumer_description(&self, s: &DataStream, c: &ConsumerRow) -> ConsumerDescription {
        ConsumerDescription {
            name: c.name.clone(),
            arn: self.consumer_arn(s.name.as_str(), c),
            status: "ACTIVE",
            created_at: c.created_at,
            stream_arn: self.stream_arn(s.name.as_str()),
        }
    }

    /// RegisterStreamConsumer: at most 20 per stream; a taken name is `ResourceInUseException`.
    /// The consumer is `ACTIVE` at once.
    pub fn register_consumer(
        &self,
        stream_arn: &str,
        name: &str,
    ) -> Result<ConsumerDescription, DsError> {
        validate::name(name, "consumerName", 128)?;
        let _admin = lock(&self.admin);
        let s = self.resolve(StreamSel::arn(stream_arn))?;
        let existing = read_lock(&s.state).consumers.clone();
        if existing.iter().any(|c| c.name == name) {
            return Err(DsError::ResourceInUse(format!(
                "Consumer {name} under stream {} already exists.",
                s.name
            )));
        }
        if existing.len() >= MAX_CONSUMERS {
            return Err(DsError::LimitExceeded(format!(
                "Stream {} already has {MAX_CONSUMERS} registered consumers.",
                s.name
            )));
        }
        let c = ConsumerRow { name: name.to_owned(), created_at: self.now() };
        store::insert_consumer(&self.catalog, s.id, &c)?;
        write_lock(&s.state).consumers.push(c.clone());
        Ok(self.consumer_description(&s, &c))
    }

    /// Finds a consumer by stream ARN + name, or by consumer ARN.
    pub(super) fn find_consumer(
        &self,
        stream_arn: Option<&str>,
        name: Option<&str>,
        consumer_arn: Option<&str>,
    ) -> Result<(Arc<DataStream>, ConsumerRow), DsError> {
        let (s, name) = match (stream_arn, name, consumer_arn) {
            (Some(arn), Some(n), None) => {
                validate::name(n, "consumerName", 128)?;
                (self.resolve(StreamSel::arn(arn))?, n.to_owned())
            }
            (None, None, Some(carn)) => {
                let (_, _, rest) = validate::stream_arn(carn, "consumerARN")?;
                let bad = || DsError::InvalidArgument(format!("Invalid ConsumerARN {carn}."));
                let (stream, consumer) = rest.split_once("/consumer/").ok_or_else(bad)?;
                let (cname, _) = consumer.rsplit_once(':').ok_or_else(bad)?;
                let stream_arn = self.stream_arn(stream);
                let s = self.resolve(StreamSel::arn(&stream_arn))?;
                let found = read_lock(&s.state).consumers.iter().find(|c| c.name == cname).cloned();
                match found {
                    Some(c) if self.consumer_arn(s.name.as_str(), &c) == carn => return Ok((s, c)),
                    _ => {
                        return Err(DsError::ResourceNotFound(format!(
                            "Consumer {carn} not found."
                        )));
                    }
                }
            }
            _ => {
                return Err(DsError::InvalidArgument(
                    "Provide either ConsumerARN, or both StreamARN and ConsumerName.".to_owned(),
                ));
            }
        };
        let found = read_lock(&s.state).consumers.iter().find(|c| c.name == name).cloned();
        let c = found.ok_or_else(|| {
            DsError::ResourceNotFound(format!("Consumer {name} under stream {} not found.", s.name))
        })?;
        Ok((s, c))
    }

    /// DescribeStreamConsumer.
    pub fn describe_consumer(
        &self,
        stream_arn: Option<&str>,
        name: Option<&str>,
        consumer_arn: Option<&str>,
    ) -> Result<ConsumerDescription, DsError> {
        let (s, c) = self.find_consumer(stream_arn, name, consumer_arn)?;
        Ok(self.consumer_description(&s, &c))
    }

    /// DeregisterStreamConsumer.
    pub fn deregister_consumer(
        &self,
        stream_arn: Option<&str>,
        name: Option<&str>,
        consumer_arn: Option<&str>,
    ) -> Result<(), DsError> {
        let _admin = lock(&self.admin);
        let (s, c) = self.find_consumer(stream_arn, name, consumer_arn)?;
        store::delete_consumer(&self.catalog, s.id, &c.name)?;
        write_lock(&s.state).consumers.retain(|x| x.name != c.name);
        Ok(())
    }

    /// ListStreamConsumers: in registration order, at most `max_results` (1–10,000, default
    /// 100) per page.
    pub fn list_consumers(
        &self,
        stream_arn: &str,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> Result<(Vec<ConsumerDescription>, Option<String>), DsError> {
        if let Some(m) = max_results {
            validate::range(m, "maxResults", 1, 10_000)?;
        }
        let now = self.now();
        let s = self.resolve(StreamSel::arn(stream_arn))?;
        let skip = match next_token {
            Some(t) => {
                let (id, skip, issued): (DataStreamId, usize, i64) =
                    self.signer.verify_next_token(t)?;
                token::check_token_age(issued, now)?;
                if id != s.id {
                    return Err(DsError::InvalidArgument(
                        "NextToken is for another stream.".to_owned(),
                    ));
                }
                skip
            }
            None => 0,
        };
        let max = max_results.unwrap_or(100) as usize;
        let all = read_lock(&s.state).consumers.clone();
        let page: Vec<ConsumerDescription> =
            all.iter().skip(skip).take(max).map(|c| self.consumer_description(&s, c)).collect();
        let token = (skip + page.len() < all.len())
            .then(|| self.signer.next_token(&(s.id, skip + page.len(), now.as_millis())));
        Ok((page, token))
    }
}
