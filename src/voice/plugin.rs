//! [`CpalVoicePlugin`]: the default microphone and speaker as resources, and every
//! [`PeerAudio`] played on the speaker.

use super::devices::{AudioDeviceError, Microphone, Speaker};
use super::mix::source_key;
use super::peer_audio::PeerAudio;
use bevy::prelude::*;
use tracing::warn;

/// What [`CpalVoicePlugin`] could not open (`None`: it is open, as a [`Microphone`] or
/// [`Speaker`] resource, or was not asked for).
#[derive(Resource, Debug, Default, Clone)]
pub struct AudioDevices {
    /// Why there is no [`Microphone`].
    pub microphone: Option<AudioDeviceError>,
    /// Why there is no [`Speaker`].
    pub speaker: Option<AudioDeviceError>,
}

/// Opens the default microphone and speaker when added ([`Microphone`], [`Speaker`]) and plays
/// every [`PeerAudio`] through the speaker, in `Update`. A device that cannot be opened is
/// logged and named in [`AudioDevices`]; the app runs on without it.
#[derive(Debug, Clone)]
pub struct CpalVoicePlugin {
    /// Open the microphone.
    pub microphone: bool,
    /// Open the speaker and play peers' audio on it.
    pub speaker: bool,
}

impl Default for CpalVoicePlugin {
    fn default() -> Self {
        CpalVoicePlugin {
            microphone: true,
            speaker: true,
        }
    }
}

impl Plugin for CpalVoicePlugin {
    fn build(&self, app: &mut App) {
        let mut status = AudioDevices::default();
        if self.microphone {
            match Microphone::open_default() {
                Ok(m) => {
                    app.insert_resource(m);
                }
                Err(e) => {
                    warn!("voice: no microphone: {e}");
                    status.microphone = Some(e);
                }
            }
        }
        if self.speaker {
            match Speaker::open_default() {
                Ok(s) => {
                    app.insert_resource(s);
                }
                Err(e) => {
                    warn!("voice: no speaker: {e}");
                    status.speaker = Some(e);
                }
            }
        }
        app.insert_resource(status)
            .add_systems(Update, play_peer_audio);
    }
}

/// Plays every [`PeerAudio`] frame through the [`Speaker`], if there is one.
pub fn play_peer_audio(speaker: Option<Res<Speaker>>, mut audio: MessageReader<PeerAudio>) {
    let Some(speaker) = speaker else {
        audio.clear();
        return;
    };
    for frame in audio.read() {
        speaker.play(source_key(&frame.peer, frame.track), frame.samples.clone());
    }
}
